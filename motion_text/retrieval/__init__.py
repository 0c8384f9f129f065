"""Sparse lexical retrieval: top-k sparsification and the exact inverted index (:mod:`.sparse`), the Seismic
approximate backend (:mod:`.seismic`, optional extra), keyword queries and document export (:mod:`.query`)."""

__all__ = ["sparse", "seismic", "query"]
