"""AIST++ (Li et al., ICCV 2021) for music-to-dance: safe motion reader, SMPL forward kinematics, windowed dataset.

On-disk layout (google/aistplusplus_api ``aist_plusplus/loader.py``)::

    <root>/motions/<seq>.pkl          dict: smpl_poses (N, 72) axis-angle, smpl_trans (N, 3), smpl_scaling (1,)
    <root>/wav/<music_id>.wav         music; the id is the ``m..`` token of the sequence name (``..._mBR0_..``)
    <root>/splits/crossmodal_{train,val,test}.txt, <root>/ignore_list.txt

Motion is at 60 fps. **Security:** a pickle can run arbitrary code when loaded, so motion files are read with
:class:`RestrictedUnpickler`, which only admits numpy arrays / dtypes / scalars and plain builtin containers and
numbers; any other global (``os.system``, ``builtins.eval``, custom classes) makes the file fail with a
:class:`~motion_text.data.readers.DataError` naming it.

Pose representation (the model's target), per frame, :data:`POSE_DIM` = 147:
``[6D rotation (Zhou et al., CVPR 2019) of the 24 SMPL joints (144), root translation in metres (3)]`` with the
translation ``smpl_trans / smpl_scaling`` (Bailando ``_prepro_aistpp.py``). In every window the horizontal root
position is made relative to the window's first frame (absolute floor positions are not predictable from music).

Joint positions for the metrics come from :func:`smpl_forward_kinematics`: with the user's SMPL model through
``smplx`` (``smpl_model=<folder or .pkl>``, ``pip install smplx``; SMPL is licensed, so it is not shipped) or,
by default, with the package's own SMPL-topology skeleton :data:`AISTPP_SKELETON` (24 joints, rest joints of the
neutral SMPL template with zero shape), which is also what the synthetic AIST++ generator uses. For zero shape the
two agree up to the template joint locations.
"""

from __future__ import annotations

import io
import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from motion_text.data.cache import default_cache_dir
from motion_text.data.music import MUSIC_FEATURE_DIM, cached_music_features
from motion_text.data.readers import DataError, SkipReport, check_inside_root, read_text
from motion_text.data.rotations import axis_angle_to_matrix, cont6d_to_matrix, matrix_to_cont6d
from motion_text.data.safe_pickle import RestrictedUnpickler
from motion_text.data.skeleton import Skeleton

__all__ = [
    "AISTPP_FPS", "AISTPP_SKELETON", "POSE_DIM", "SPLITS", "MUSIC_TOLERANCE_S", "RestrictedUnpickler", "load_motion_pkl",
    "save_motion_pkl", "music_id_of", "DanceItem", "read_aistpp_split", "smpl_forward_kinematics",
    "poses_to_features", "features_to_rotmats", "features_to_smpl", "AISTPPDataset", "MusicDataset",
    "collate_dance", "build_dataset", "reference_dances", "music_cache_dir",
]

log = logging.getLogger(__name__)

AISTPP_FPS = 60.0
NUM_SMPL_JOINTS = 24
POSE_DIM = NUM_SMPL_JOINTS * 6 + 3
SPLITS = ("train", "val", "test")
#: default of ``AISTPPDataset(music_tolerance=...)``: seconds a wav may fall short of its motion (the motion is then
#: cut to the music, as Bailando and EDGE cut every pair to the shorter of the two); a wav shorter by more is skipped
MUSIC_TOLERANCE_S = 0.5
_NOTED: set[tuple[str, str]] = set()  # (what, root) of the once-per-root notes already logged
_MUSIC_ID = re.compile(r"^m[A-Z]{2}\d$")

# ---- SMPL-topology skeleton --------------------------------------------------------------------------------------
_SMPL_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle", "right_ankle",
    "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)  # fmt: skip
_SMPL_CHAINS = ((0, 1, 4, 7, 10), (0, 2, 5, 8, 11), (0, 3, 6, 9, 12, 15), (9, 13, 16, 18, 20, 22),
                (9, 14, 17, 19, 21, 23))
#: rest joint locations (metres) of the neutral SMPL template with zero shape, Y up, facing +Z, left = +X
SMPL_REST_JOINTS = np.array(
    [[-0.0018, -0.2233, 0.0282], [0.0695, -0.3141, 0.0239], [-0.0678, -0.3143, 0.0218], [-0.0043, -0.1144, 0.0015],
     [0.1022, -0.6890, 0.0169], [-0.1060, -0.6940, 0.0199], [0.0013, 0.0205, 0.0135], [0.0885, -1.0874, -0.0266],
     [-0.0920, -1.0948, -0.0272], [0.0025, 0.0738, 0.0382], [0.1191, -1.1437, 0.0979], [-0.1192, -1.1441, 0.1014],
     [-0.0022, 0.2887, -0.0141], [0.0765, 0.1936, -0.0068], [-0.0780, 0.1926, -0.0112], [0.0052, 0.3897, 0.0371],
     [0.1971, 0.2405, -0.0188], [-0.1917, 0.2369, -0.0155], [0.4499, 0.2231, -0.0384], [-0.4554, 0.2273, -0.0446],
     [0.7188, 0.2347, -0.0468], [-0.7108, 0.2306, -0.0488], [0.8016, 0.2290, -0.0578], [-0.7906, 0.2203, -0.0593]],
    dtype=np.float64,
)  # fmt: skip


def _smpl_skeleton() -> Skeleton:
    parents = [-1] * NUM_SMPL_JOINTS
    for chain in _SMPL_CHAINS:
        for a, b in zip(chain[:-1], chain[1:]):
            parents[b] = a
    offsets = SMPL_REST_JOINTS - SMPL_REST_JOINTS[np.maximum(parents, 0)]
    offsets[0] = 0.0
    norms = np.linalg.norm(offsets, axis=-1, keepdims=True)
    return Skeleton(
        name="aistpp", joint_names=_SMPL_NAMES, chains=_SMPL_CHAINS,
        raw_offsets=np.divide(offsets, norms, out=np.zeros_like(offsets), where=norms > 0), rest_offsets=offsets,
        fps=AISTPP_FPS, foot_left=(7, 10), foot_right=(8, 11), face_joints=(2, 1, 17, 16),
        parts={"root": (0,), "right_arm": (14, 17, 19, 21, 23), "left_arm": (13, 16, 18, 20, 22),
               "torso": (3, 6, 9, 12, 15), "right_leg": (2, 5, 8, 11), "left_leg": (1, 4, 7, 10)},
    )


#: the 24-joint SMPL kinematic tree at 60 fps (rest offsets from :data:`SMPL_REST_JOINTS`)
AISTPP_SKELETON = _smpl_skeleton()


# ---- restricted pickle loading (motion_text.data.safe_pickle) ------------------------------------------------
def load_motion_pkl(path: str | Path) -> dict[str, np.ndarray]:
    """Read an AIST++ motion pickle with :class:`RestrictedUnpickler` and check its structure.

    Returns ``{"smpl_poses": (N, 72) float32, "smpl_trans": (N, 3) float32, "smpl_scaling": (1,) float32}``.

    Raises
    ------
    DataError
        Naming the file when it is missing, is not a safe pickle, or lacks / misshapes a field.
    """
    path = Path(path)
    try:
        data = RestrictedUnpickler(io.BytesIO(path.read_bytes())).load()
    except FileNotFoundError:
        raise DataError(f"{path}: motion file not found") from None
    except Exception as err:  # UnpicklingError, EOFError, ValueError from numpy ...
        raise DataError(f"{path}: not a readable AIST++ motion pickle ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a dict with smpl_poses/smpl_trans/smpl_scaling, got {type(data).__name__}")
    missing = [k for k in ("smpl_poses", "smpl_trans", "smpl_scaling") if k not in data]
    if missing:
        raise DataError(f"{path}: missing field(s) {missing}; found {sorted(map(str, data))}")
    try:
        poses, trans, scaling = (np.asarray(data[k], dtype=np.float32) for k in ("smpl_poses", "smpl_trans",
                                                                                    "smpl_scaling"))
    except (TypeError, ValueError) as err:  # a string, a dict, a ragged list ...
        raise DataError(f"{path}: smpl_poses / smpl_trans / smpl_scaling must be numeric arrays ({err})") from None
    scaling = scaling.reshape(-1)
    if poses.ndim != 2 or poses.shape[1] != 72:
        raise DataError(f"{path}: smpl_poses must be (N, 72) axis-angle, got {poses.shape}")
    if trans.shape != (len(poses), 3):
        raise DataError(f"{path}: smpl_trans must be ({len(poses)}, 3), got {trans.shape}")
    if scaling.size != 1 or not np.isfinite(scaling).all() or float(scaling[0]) <= 0:
        raise DataError(f"{path}: smpl_scaling must be one positive number, got {scaling}")
    if not (np.isfinite(poses).all() and np.isfinite(trans).all()):
        raise DataError(f"{path}: non-finite values in smpl_poses / smpl_trans")
    return {"smpl_poses": poses, "smpl_trans": trans, "smpl_scaling": scaling}


def save_motion_pkl(path: str | Path, smpl_poses: np.ndarray, smpl_trans: np.ndarray, smpl_scaling: float = 1.0
                    ) -> Path:
    """Write a motion in the AIST++ pickle layout (readable by :func:`load_motion_pkl` and the official API)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"smpl_poses": np.asarray(smpl_poses, np.float32).reshape(-1, 72),
            "smpl_trans": np.asarray(smpl_trans, np.float32).reshape(-1, 3),
            "smpl_scaling": np.asarray([smpl_scaling], np.float32)}
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=4)
    return path


def music_id_of(seq_name: str) -> str | None:
    """The music id of an AIST++ sequence name (``gBR_sBM_cAll_d04_mBR0_ch01`` -> ``mBR0``), else None."""
    for token in seq_name.split("_"):
        if _MUSIC_ID.match(token):
            return token
    return None


# ---- split reader ------------------------------------------------------------------------------------------------
@dataclass
class DanceItem:
    key: str  # sequence name
    motion_path: Path
    wav_path: Path
    music_id: str


def _read_list(path: Path, what: str) -> list[str]:
    return [ln.strip() for ln in read_text(path, what).splitlines() if ln.strip()]


def _note_once(what: str, root: Path, msg: str, *args) -> None:
    if (what, str(root)) not in _NOTED:
        _NOTED.add((what, str(root)))
        log.warning(msg, *args)


def _split_file(root: Path, split: str) -> Path:
    """``splits/crossmodal_<split>.txt``; without a val file (EDGE and Bailando ship only train / test) val falls back
    to the test file, said once per root."""
    split_file = root / "splits" / f"crossmodal_{split}.txt"
    test_file = root / "splits" / "crossmodal_test.txt"
    if split == "val" and not split_file.is_file() and test_file.is_file():
        _note_once("val", root, "%s not found (EDGE and Bailando ship only crossmodal train/test): validating on %s",
                   split_file, test_file)
        return test_file
    if not split_file.is_file():
        raise DataError(f"{split_file}: AIST++ split file not found (expected the layout motions/, wav/, splits/)")
    return split_file


def _unmatched_ignores(root: Path, ignored: set[str]) -> None:
    """Log once per root the ignore-list entries that no split file lists and no motion file has (typos, another
    naming such as a camera id instead of ``cAll``)."""
    listed: set[str] = set()
    for f in (root / "splits").glob("crossmodal_*.txt"):
        listed |= set(_read_list(f, "split file"))
    stray = sorted(n for n in ignored - listed if not (root / "motions" / f"{n}.pkl").is_file())
    if stray:
        _note_once("ignore", root, "%s: %d of %d entries match no sequence (in no split file, no motions/<name>.pkl), "
                   "e.g. %s", root / "ignore_list.txt", len(stray), len(ignored), stray[:3])


def read_aistpp_split(root: str | Path, split: str, strict: bool = False,
                      return_report: bool = False) -> list[DanceItem] | tuple[list[DanceItem], SkipReport]:
    """Items of ``splits/crossmodal_<split>.txt`` minus ``ignore_list.txt``.

    Sequences that are ignored, lack a motion file, a music id or a wav are skipped, counted by reason and logged
    once (``strict=True`` raises instead). A missing root or split file raises :class:`DataError`; a missing val file
    falls back to the test file (EDGE's and Bailando's layout), and ignore-list entries that match no sequence are
    logged, each once per root. A name that would leave the root (absolute, ``..``) raises :class:`DataError`.
    ``return_report``: also return the :class:`SkipReport` (``motion-text counts``).
    """
    root = Path(root)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    split_file = _split_file(root, split)
    ignore_file = root / "ignore_list.txt"
    ignored = set(_read_list(ignore_file, "ignore list")) if ignore_file.is_file() else set()
    names = [check_inside_root(n, split_file, "sequence") for n in _read_list(split_file, "split file")]
    if ignored:
        _unmatched_ignores(root, ignored)
    report = SkipReport(f"aistpp {split}", total=len(names))
    items = []
    for name in names:
        reason = None
        mid = music_id_of(name)
        if name in ignored:
            reason = "in ignore_list.txt"
        elif not (root / "motions" / f"{name}.pkl").is_file():
            reason = "motion file missing"
        elif mid is None:
            reason = "no music id in the name"
        elif not (root / "wav" / f"{mid}.wav").is_file():
            reason = "wav missing"
        if reason:  # the ignore list is the dataset's own exclusion: counted, never an error in strict mode
            report.skip(reason, f"{split_file}: sequence {name!r}", strict and reason != "in ignore_list.txt")
            continue
        items.append(DanceItem(name, root / "motions" / f"{name}.pkl", root / "wav" / f"{mid}.wav", mid))
    report.log()
    return (items, report) if return_report else items


# ---- pose representation and forward kinematics ------------------------------------------------------------------
def poses_to_features(smpl_poses: np.ndarray | torch.Tensor, trans_m: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, 72) axis-angle + (N, 3) translation in metres -> (N, 147) ``[6D x 24, translation]`` float32."""
    aa = torch.as_tensor(np.asarray(smpl_poses), dtype=torch.float64).reshape(-1, NUM_SMPL_JOINTS, 3)
    six = matrix_to_cont6d(axis_angle_to_matrix(aa)).reshape(len(aa), -1)
    return torch.cat([six, torch.as_tensor(np.asarray(trans_m), dtype=torch.float64)], -1).float()


def features_to_rotmats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 147) pose features -> rotation matrices (..., 24, 3, 3) (Gram-Schmidt) and translation (..., 3)."""
    if x.shape[-1] != POSE_DIM:
        raise ValueError(f"pose features must have {POSE_DIM} channels, got {tuple(x.shape)}")
    six = x[..., : NUM_SMPL_JOINTS * 6].reshape(x.shape[:-1] + (NUM_SMPL_JOINTS, 6))
    return cont6d_to_matrix(six), x[..., NUM_SMPL_JOINTS * 6 :]


def _matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(m.reshape(-1, 3, 3)).as_rotvec().reshape(m.shape[:-2] + (3,))


def features_to_smpl(x: torch.Tensor | np.ndarray, scaling: float = 1.0) -> dict[str, np.ndarray]:
    """(N, 147) pose features -> the AIST++ motion dict (axis-angle ``smpl_poses``, ``smpl_trans = t * scaling``)."""
    rot, trans = features_to_rotmats(torch.as_tensor(np.asarray(x), dtype=torch.float64))
    poses = _matrix_to_axis_angle(rot.numpy()).reshape(len(rot), 72)
    return {"smpl_poses": poses.astype(np.float32), "smpl_trans": (trans.numpy() * scaling).astype(np.float32),
            "smpl_scaling": np.asarray([scaling], np.float32)}


def smpl_forward_kinematics(rotmats: torch.Tensor, trans: torch.Tensor, smpl_model: str | None = None) -> torch.Tensor:
    """Joint positions (..., T, 24, 3) from local joint rotations (..., T, 24, 3, 3) and root translation (..., T, 3).

    ``p_0 = J_0 + t``, ``p_j = p_parent(j) + G_parent(j) (J_j - J_parent(j))``, ``G_j = G_parent(j) R_j`` with the rest
    joints ``J`` of :data:`SMPL_REST_JOINTS` (SMPL's joint transform chain, Loper et al., SIGGRAPH Asia 2015, eq. 4,
    without shape blend shapes). With ``smpl_model`` (a folder or ``.pkl`` of the SMPL model) the joints are
    ``smplx.SMPL(...).joints[:, :24]`` instead, as Bailando and FACT compute them.
    """
    if smpl_model is not None:
        return _smplx_joints(rotmats, trans, smpl_model)
    rest = torch.as_tensor(SMPL_REST_JOINTS, dtype=rotmats.dtype, device=rotmats.device)
    offsets = torch.as_tensor(AISTPP_SKELETON.rest_offsets, dtype=rotmats.dtype, device=rotmats.device)
    parents = AISTPP_SKELETON.parents
    glob: list[torch.Tensor | None] = [None] * NUM_SMPL_JOINTS
    pos: list[torch.Tensor | None] = [None] * NUM_SMPL_JOINTS
    glob[0] = rotmats[..., 0, :, :]
    pos[0] = rest[0] + trans
    for chain in AISTPP_SKELETON.chains:
        for j in chain[1:]:
            p = parents[j]
            pos[j] = pos[p] + (glob[p] @ offsets[j].unsqueeze(-1)).squeeze(-1)
            glob[j] = glob[p] @ rotmats[..., j, :, :]
    return torch.stack(pos, dim=-2)


def _smplx_joints(rotmats: torch.Tensor, trans: torch.Tensor, smpl_model: str) -> torch.Tensor:
    try:
        import smplx
    except ImportError:
        raise ImportError("smpl_model was given but the 'smplx' package is not installed (pip install smplx)") from None
    model = smplx.SMPL(model_path=str(smpl_model), gender="neutral", batch_size=1)
    from scipy.spatial.transform import Rotation

    lead = rotmats.shape[:-3]
    rv = torch.as_tensor(Rotation.from_matrix(rotmats.detach().reshape(-1, 3, 3).cpu().double().numpy()).as_rotvec(),
                         dtype=torch.float32).reshape(-1, 72)
    out = model.forward(global_orient=rv[:, :3], body_pose=rv[:, 3:], transl=trans.detach().reshape(-1, 3).float().cpu(),
                        batch_size=rv.shape[0])
    return out.joints[:, :NUM_SMPL_JOINTS].reshape(lead + (NUM_SMPL_JOINTS, 3)).to(rotmats)


# ---- dataset -----------------------------------------------------------------------------------------------------
class AISTPPDataset(Dataset):
    """Aligned music / dance windows of AIST++ sequences.

    Parameters
    ----------
    items: sequences of one split (:func:`read_aistpp_split`).
    window: crop length in frames; ``None`` = full sequences (test). Sequences shorter than ``window`` are
        skipped and counted.
    train: random crop offsets (seeded by ``(seed, epoch, index)``, as :class:`~motion_text.data.dataset.
        MotionTextDataset`); otherwise the window starts at frame 0.
    music_cache_dir: where the 35-d music features are cached (one file per wav).
    fps: motion frame rate; the music features are extracted at the same rate.
    strict: raise instead of skipping.
    music_tolerance: seconds a wav may fall short of its motion; the pair is then cut to the music (Bailando's
        ``_prepro_aistpp.py::align`` cuts every pair to the shorter of the two, EDGE's ``data/slice.py`` cuts the motion
        to the audio's windows). A wav shorter by more (a wrong or cut track) is skipped, counted and reported with its
        file name; a RIFF file whose header declares more audio than it holds stops with ``cannot read audio file``
        (:func:`motion_text.data.music.wav_truncation`). Default :data:`MUSIC_TOLERANCE_S`.
    name: label of the skip report (``aistpp <split>``).

    Samples are dicts: ``motion`` (T, 147), ``music`` (T, 35) raw features, ``beats`` (frame indices of the music
    beats in the window), ``key``, ``music_id``, ``index``, ``scaling``.
    """

    def __init__(self, items: list[DanceItem], window: int | None, train: bool, music_cache_dir: str | Path,
                 fps: float = AISTPP_FPS, seed: int = 0, strict: bool = False,
                 music_tolerance: float = MUSIC_TOLERANCE_S, name: str = "aistpp") -> None:
        self.window, self.train, self.seed, self.fps = window, train, seed, fps
        self.music = {}
        for it in items:
            if it.music_id not in self.music:
                self.music[it.music_id] = _music_features(it.wav_path, music_cache_dir, fps)
        self.items = []
        self.lengths: list[int] = []
        report = SkipReport(name, total=len(items))
        slack = int(round(music_tolerance * fps))
        pose_sum, frames = torch.zeros(POSE_DIM, dtype=torch.float64), 0
        for it in items:
            data = load_motion_pkl(it.motion_path)
            n_motion, n_music = len(data["smpl_poses"]), len(self.music[it.music_id])
            if n_music < n_motion - slack:
                report.skip("music shorter than the motion", f"{it.wav_path} ({n_music / fps:.2f} s for the "
                            f"{n_motion / fps:.2f} s of {it.key}; tolerance {music_tolerance:g} s)", strict)
                continue
            n = min(n_motion, n_music)
            if window is not None and n < window:
                report.skip(f"shorter than the {window}-frame window", f"{it.motion_path} ({n} frames)", strict)
                continue
            self.items.append(it)
            self.lengths.append(n)
            trans = data["smpl_trans"][:n] / data["smpl_scaling"][0]
            pose_sum += poses_to_features(data["smpl_poses"][:n], trans - trans[:1] * [1, 0, 1]).double().sum(0)
            frames += n
        self.pose_mean = (pose_sum / max(frames, 1)).float()
        self.report = report
        report.log()

    def __len__(self) -> int:
        return len(self.items)

    def stats(self) -> dict[str, torch.Tensor]:
        """``music_mean`` / ``music_std`` (floored at 1e-3) of the music features of this split's sequences and
        ``pose_mean``, the mean pose feature (root horizontally relative to the first frame)."""
        feats = np.concatenate([self.music[it.music_id][:n] for it, n in zip(self.items, self.lengths)])
        return {"music_mean": torch.from_numpy(feats.mean(0).astype(np.float32)),
                "music_std": torch.from_numpy(np.maximum(feats.std(0), 1e-3).astype(np.float32)),
                "pose_mean": self.pose_mean}

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        index, epoch = (key, 0) if isinstance(key, (int, np.integer)) else key
        it, n = self.items[index], self.lengths[index]
        if self.window is not None:
            offset = int(np.random.default_rng([self.seed, epoch, index]).integers(0, n - self.window + 1)) \
                if self.train else 0
            lo, hi = offset, offset + self.window
        else:
            lo, hi = 0, n
        data = load_motion_pkl(it.motion_path)
        scaling = float(data["smpl_scaling"][0])
        trans = data["smpl_trans"][lo:hi] / scaling
        trans = trans - np.array([trans[0, 0], 0.0, trans[0, 2]], dtype=np.float32)
        music = self.music[it.music_id][lo:hi]
        return {
            "motion": poses_to_features(data["smpl_poses"][lo:hi], trans),
            "music": torch.from_numpy(np.ascontiguousarray(music, dtype=np.float32)),
            "beats": np.flatnonzero(music[:, -1] > 0.5),
            "key": it.key,
            "music_id": it.music_id,
            "index": index,
            "scaling": scaling,
        }


def _music_features(wav: Path, cache_dir: str | Path, fps: float) -> np.ndarray:
    """:func:`~motion_text.data.music.cached_music_features`, its errors (unreadable, cut short, silent) a
    :class:`DataError` naming the file."""
    try:
        return cached_music_features(wav, cache_dir, fps=fps)
    except ValueError as e:
        msg = str(e)
        raise DataError(msg if str(wav) in msg else f"{wav}: {msg}") from None


def collate_dance(batch: list[dict]) -> dict:
    """Pad to the longest sequence: ``motion`` (B, T, 147), ``music`` (B, T, 35), ``length``, ``mask`` (B, T),
    ``beats`` / ``key`` / ``music_id`` (lists), ``index`` (B,), ``scaling`` (B,)."""
    lengths = torch.tensor([len(b["motion"]) for b in batch], dtype=torch.long)
    t = int(lengths.max())
    motion = torch.zeros(len(batch), t, POSE_DIM)
    music = torch.zeros(len(batch), t, MUSIC_FEATURE_DIM)
    for i, b in enumerate(batch):
        motion[i, : lengths[i]] = b["motion"]
        music[i, : lengths[i]] = b["music"]
    return {
        "motion": motion, "music": music, "length": lengths, "mask": torch.arange(t)[None] < lengths[:, None],
        "beats": [b["beats"] for b in batch], "key": [b["key"] for b in batch],
        "music_id": [b["music_id"] for b in batch], "index": torch.tensor([b["index"] for b in batch]),
        "scaling": torch.tensor([b["scaling"] for b in batch], dtype=torch.float32),
    }


class MusicDataset(Dataset):
    """Music-only samples for generation from audio files (``predict``): ``music`` (T, 35), ``beats``, ``key``."""

    def __init__(self, wavs: list[str | Path], music_cache_dir: str | Path, fps: float = AISTPP_FPS) -> None:
        self.wavs = [Path(w).expanduser() for w in wavs]
        self.music = [_music_features(w, music_cache_dir, fps) for w in self.wavs]

    def __len__(self) -> int:
        return len(self.wavs)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        index = key if isinstance(key, (int, np.integer)) else key[0]
        music = self.music[index]
        return {"motion": torch.zeros(len(music), POSE_DIM), "music": torch.from_numpy(music),
                "beats": np.flatnonzero(music[:, -1] > 0.5), "key": self.wavs[index].stem,
                "music_id": self.wavs[index].stem, "index": index, "scaling": 1.0}


def music_cache_dir() -> Path:
    """Cache folder of the 35-d music features (``<cache>/music_features``)."""
    return default_cache_dir() / "music_features"


def build_dataset(dm, split: str) -> Dataset:
    """The AIST++ dataset of one split for :class:`~motion_text.data.datamodule.MotionTextDataModule`: random
    ``window_seconds`` crops in train, crops from frame 0 in val, full sequences in test, the ``predict_music``
    files for ``split == "music"``."""
    spec = dm.specs[0]
    fps = spec.skeleton.fps
    if split == "music":
        return MusicDataset(dm.predict_music, music_cache_dir(), fps=fps)
    items = read_aistpp_split(spec.resolved_root(), split, strict=dm.strict)
    if not items:
        raise DataError(f"{spec.resolved_root()}: AIST++ split {split!r} is empty")
    window = None if split == "test" else int(round(dm.window_seconds * fps))
    ds = AISTPPDataset(items, window, train=split == "train", music_cache_dir=music_cache_dir(), fps=fps,
                       seed=dm.seed, strict=dm.strict, music_tolerance=dm.music_tolerance_seconds,
                       name=f"aistpp {split}")
    if len(ds) == 0:
        raise DataError(f"{spec.resolved_root()}: no {split} sequence left ({ds.report.message()})")
    return ds


def reference_dances(dm, splits: list[str]) -> list[dict]:
    """Full ground-truth sequences (``motion`` (T, 147), ``key``) of ``splits`` for FID reference statistics."""
    spec, out = dm.specs[0], []
    for split in splits:
        for it in read_aistpp_split(spec.resolved_root(), split, strict=dm.strict):
            data = load_motion_pkl(it.motion_path)
            trans = data["smpl_trans"] / float(data["smpl_scaling"][0])
            out.append({"motion": poses_to_features(data["smpl_poses"], trans), "key": it.key})
    return out
