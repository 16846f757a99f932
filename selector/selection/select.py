"""Which samples a generation sends to labelers: the selection rules as a pure numpy function.

The rules are fixed by DESIGN.md ("Selection"); this module is their only implementation (the
tests compare it with a plain-Python oracle, ``tests/selector/oracle.py``). No Django here: the
caller (``annotate``) loads one row per sample into arrays and maps the returned indices back.

Inputs, one entry per sample (the campaign's train-split samples that have an answer):

- ``problem``  int64 problem key (e.g. the Problem primary key).
- ``order``    int64 import order (e.g. the Sample primary key); unique among eligible samples.
- ``score``    float64 solution score from the chosen source; NaN means "no score" (not eligible).
- ``wrong``    bool, the graded final answer is wrong.
- ``fingerprint`` the steps' dedup key, canonically ``FINGERPRINT_DTYPE`` (``'S16'``: the raw
  16-byte digest of `steps_fingerprint`). A ``(n, 2)`` uint64/int64 array or a 1-D integer
  array are accepted too (tests use small integers); excluded keys must use the same form.

Decisions the design leaves open, fixed here (the oracle implements the same):

1. Pool = samples with a non-NaN score that are not ``excluded``; of those, one per (problem,
   fingerprint): the earliest by ``order`` (an unscored earlier copy does not hide a later scored
   one). A key equal to an already-selected sample's knocks out every copy. Already-selected
   keys are the ``excluded`` samples' own keys (scored or not) plus the explicit
   (``excluded_problems``, ``excluded_fingerprints``) pairs.
2. Rank = score descending, ties by ``order`` ascending (-0.0 and 0.0 tie).
3. ``n_wrong = floor(wrong_fraction * k + 1/2)`` in exact rational arithmetic on the shortest
   decimal form of ``wrong_fraction`` (so 0.7 x 45 = 31.5 rounds to 32; plain floats give 31).
4. ``max_per_problem`` M caps every phase. global: the wrong phase skips wrong samples whose
   problem already has M picks, and so does the fill phase. per_problem: the per-problem quota
   is ``min(k, M)``, and its wrong phase takes ``min(n_wrong, min(k, M))``.
5. Output order. global: every wrong-phase pick in rank order, then every fill pick in rank
   order. per_problem: problems by ascending ``problem`` key; within a problem its wrong-phase
   picks in rank order, then its fill picks in rank order.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from selector.selection.fingerprint import FINGERPRINT_DTYPE, FINGERPRINT_SIZE
from selector.selection.params import SelectionParams, Strategy


class Picks(NamedTuple):
    """Selected indices into the input arrays, in selection order, and which phase took each."""

    indices: np.ndarray  # int64
    wrong_phase: np.ndarray  # bool, True where the wrong-answer phase took the sample


# --------------------------------------------------------------------------------------------
# Input checking
# --------------------------------------------------------------------------------------------


def _fp_columns(fp: np.ndarray, n: int | None, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Any accepted fingerprint form as uint64 columns (hi, lo): equal keys <=> equal columns."""
    fp = np.asarray(fp)
    if n is not None and fp.shape[:1] != (n,):
        raise ValueError(f"{what} has {fp.shape[:1]} rows, expected {n}")
    if fp.ndim == 1 and fp.dtype.kind in "SV" and fp.dtype.itemsize == FINGERPRINT_SIZE:
        cols = np.ascontiguousarray(fp).view("<u8").reshape(-1, 2)
        return cols[:, 0], cols[:, 1]
    if fp.ndim == 2 and fp.shape[1] == 2 and fp.dtype in (np.uint64, np.int64):
        return fp[:, 0].astype(np.uint64), fp[:, 1].astype(np.uint64)
    if fp.ndim == 1 and fp.dtype.kind in "iu" and fp.dtype.itemsize <= 8:
        lo = fp.astype(np.int64).astype(np.uint64)
        return np.zeros(len(fp), dtype=np.uint64), lo
    raise TypeError(
        f"{what} must be {FINGERPRINT_DTYPE} (or an (n, 2) 64-bit or 1-D integer array), "
        f"not {fp.dtype} with shape {fp.shape}"
    )


class _Inputs(NamedTuple):
    problem: np.ndarray
    order: np.ndarray
    score: np.ndarray
    wrong: np.ndarray
    fingerprint: np.ndarray
    excluded: np.ndarray | None
    excluded_problems: np.ndarray
    excluded_fingerprints: np.ndarray | None


def _check_inputs(
    problem: Any,
    order: Any,
    score: Any,
    wrong: Any,
    fingerprint: Any,
    excluded: Any,
    excluded_problems: Any,
    excluded_fingerprints: Any,
) -> _Inputs:
    problem = np.asarray(problem)
    if problem.ndim != 1:
        raise ValueError("problem must be 1-D")
    n = len(problem)
    if n and problem.dtype.kind not in "iu":
        raise TypeError(f"problem must be integers, not {problem.dtype}")
    problem = problem.astype(np.int64, copy=False)
    order = np.asarray(order)
    if n and order.dtype.kind not in "iu":
        raise TypeError(f"order must be integers, not {order.dtype}")
    order = order.astype(np.int64, copy=False)
    score = np.asarray(score, dtype=np.float64)
    wrong = np.asarray(wrong)
    if n and wrong.dtype != np.bool_:
        raise TypeError(f"wrong must be bool, not {wrong.dtype}")
    wrong = wrong.astype(np.bool_, copy=False)
    fingerprint = np.asarray(fingerprint)
    for name, arr in (("order", order), ("score", score), ("wrong", wrong)):
        if arr.shape != (n,):
            raise ValueError(f"{name} has shape {arr.shape}, expected ({n},)")
    _fp_columns(fingerprint[:0], None, "fingerprint")  # type check only
    if fingerprint.shape[:1] != (n,):
        raise ValueError(f"fingerprint has {fingerprint.shape[:1]} rows, expected {n}")
    if excluded is not None:
        excluded = np.asarray(excluded)
        if excluded.shape != (n,) or (n and excluded.dtype != np.bool_):
            raise ValueError(f"excluded must be a bool array of shape ({n},)")
        excluded = excluded.astype(np.bool_, copy=False)
    if (excluded_problems is None) != (excluded_fingerprints is None):
        raise ValueError("excluded_problems and excluded_fingerprints go together")
    if excluded_problems is None:
        excluded_problems = np.zeros(0, dtype=np.int64)
    else:
        excluded_problems = np.asarray(excluded_problems)
        if excluded_problems.ndim != 1 or (
            len(excluded_problems) and excluded_problems.dtype.kind not in "iu"
        ):
            raise TypeError("excluded_problems must be a 1-D integer array")
        excluded_problems = excluded_problems.astype(np.int64, copy=False)
        excluded_fingerprints = np.asarray(excluded_fingerprints)
        if len(excluded_fingerprints) != len(excluded_problems):
            raise ValueError("excluded_problems and excluded_fingerprints differ in length")
        if len(excluded_fingerprints) and (
            excluded_fingerprints.dtype != fingerprint.dtype
            or excluded_fingerprints.shape[1:] != fingerprint.shape[1:]
        ):
            raise TypeError(
                "excluded_fingerprints must have the same dtype and shape as fingerprint"
            )
        if len(excluded_fingerprints) == 0:
            excluded_fingerprints = None
    return _Inputs(
        problem,
        order,
        score,
        wrong,
        fingerprint,
        excluded,
        excluded_problems,
        excluded_fingerprints,
    )


# --------------------------------------------------------------------------------------------
# Vectorised implementation
# --------------------------------------------------------------------------------------------

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0x165667B19E3779F9)
_M4 = np.uint64(0xBF58476D1CE4E5B9)


def _mix64(problem: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """A 64-bit hash of (problem, hi, lo); only a speed-up: exactness never depends on it."""
    x = hi * _M1  # uint64 arithmetic wraps, which is what a hash wants
    t = lo * _M2  # one scratch array for every step: 10⁷ samples, ~80 MB each
    x ^= t
    x ^= np.multiply(problem.view(np.uint64), _M3, out=t)
    x ^= np.right_shift(x, np.uint64(31), out=t)
    x *= _M4
    x ^= np.right_shift(x, np.uint64(29), out=t)
    return x


def _dedup_keep(
    problem: np.ndarray,
    hi: np.ndarray,
    lo: np.ndarray,
    x_problem: np.ndarray,
    x_hi: np.ndarray,
    x_lo: np.ndarray,
) -> np.ndarray | None:
    """Which candidates (given in import order) survive dedup; None when all do.

    Candidates whose 64-bit hash is unique (among candidates and excluded keys) are distinct
    for sure; only those that share a hash are grouped, by hash, and the full keys are checked.
    """
    k1 = _mix64(problem, hi, lo)
    xk = _mix64(x_problem, x_hi, x_lo)
    s = np.sort(np.concatenate([k1, xk]) if len(xk) else k1)
    shared = s[1:][s[1:] == s[:-1]]  # sorted, so dropping repeats is one comparison (no unique)
    del s
    shared = shared[np.concatenate([[True], shared[1:] != shared[:-1]])] if len(shared) else shared
    if len(shared) == 0:
        return None
    # Membership in `shared` through a bitmap on the top hash bits: a superset is fine (the exact
    # pass below sorts it out) and a gather from a small table beats a binary search 10x.
    bits = int(np.clip(math.ceil(math.log2(len(shared) * 64)), 12, 26))
    table = np.zeros(1 << bits, dtype=bool)
    shift = np.uint64(64 - bits)
    table[shared >> shift] = True
    cand = np.flatnonzero(table[k1 >> shift])
    xs = np.flatnonzero(table[xk >> shift])
    # Excluded keys go first (rank -1), then candidates in import order, so that after a stable
    # sort the first member of each group is an excluded key if there is one, else the earliest.
    rank = np.concatenate([np.full(len(xs), -1, dtype=np.int64), cand])
    p = np.concatenate([x_problem[xs], problem[cand]])
    h = np.concatenate([x_hi[xs], hi[cand]])
    lw = np.concatenate([x_lo[xs], lo[cand]])
    kk = np.concatenate([xk[xs], k1[cand]])
    del k1
    perm = np.argsort(kk, kind="stable")
    p, h, lw, rank, kk = p[perm], h[perm], lw[perm], rank[perm], kk[perm]
    new_key = (p[1:] != p[:-1]) | (h[1:] != h[:-1]) | (lw[1:] != lw[:-1])
    if (new_key & (kk[1:] == kk[:-1])).any():
        # Two different keys share a 64-bit hash (never seen in practice): sort on the keys.
        perm = np.lexsort((rank, lw, h, p))
        p, h, lw, rank = p[perm], h[perm], lw[perm], rank[perm]
        new_key = (p[1:] != p[:-1]) | (h[1:] != h[:-1]) | (lw[1:] != lw[:-1])
    head = np.ones(len(rank), dtype=bool)
    head[1:] = new_key
    drop = rank[~head & (rank >= 0)]  # every candidate that is not first of its group
    keep = np.ones(len(problem), dtype=bool)
    keep[drop] = False
    return keep


def _desc_key(score: np.ndarray) -> np.ndarray:
    """uint64 keys whose ascending order is descending score (no NaN); -0.0 and 0.0 tie."""
    bits = (score + 0.0).view(np.int64)  # + 0.0 turns -0.0 into 0.0
    # IEEE trick: negatives already sort descending by their bits; flip the rest but the sign.
    flip = bits >> 63  # arithmetic shift: all ones for negatives, 0 otherwise
    np.invert(flip, out=flip)
    flip &= np.int64(0x7FFF_FFFF_FFFF_FFFF)
    bits ^= flip
    return bits.view(np.uint64)


def _rank_order(key: np.ndarray, group: np.ndarray | None = None) -> np.ndarray:
    """The permutation a stable argsort by (group, key) gives (ties by position), from one
    plain sort of packed uint64s: the group, the key's top bits and the position. NumPy sorts
    64-bit values with SIMD, 3x as fast as a stable argsort of 10⁷; the rare runs whose keys
    differ only past the kept bits are then re-sorted on the whole key."""
    n = len(key)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    pos_bits = max(1, (n - 1).bit_length())
    offset = None if group is None else (group - group.min()).view(np.uint64)
    group_bits = 0 if offset is None else int(offset.max()).bit_length()
    key_bits = 64 - pos_bits - group_bits
    if key_bits < 16:  # too many problems or samples to pack: sort on the whole values
        return np.lexsort((key,) if group is None else (key, group))
    packed = key >> np.uint64(64 - key_bits)
    packed <<= np.uint64(pos_bits)
    packed |= np.arange(n, dtype=np.uint64)
    if group_bits:
        packed |= np.left_shift(offset, np.uint64(64 - group_bits), out=offset)
    packed.sort()
    order = np.bitwise_and(packed, np.uint64((1 << pos_bits) - 1)).view(np.int64)
    packed >>= np.uint64(pos_bits)  # group and kept key bits: equal ones form a run
    same = packed[1:] == packed[:-1]
    del packed
    if not same.any():
        return order
    ranked = key[order]
    clash = np.flatnonzero(same & (ranked[1:] != ranked[:-1]))
    if len(clash):
        # The runs holding a clash, each re-sorted on (whole key, position).
        starts = np.concatenate([[0], np.flatnonzero(~same) + 1])
        ends = np.append(starts[1:], n)
        bad = np.unique(np.searchsorted(starts, clash, side="right") - 1)
        lengths = ends[bad] - starts[bad]
        before = np.cumsum(lengths) - lengths
        at = np.repeat(starts[bad] - before, lengths) + np.arange(lengths.sum())
        run = np.repeat(np.arange(len(bad)), lengths)
        order[at] = order[at][np.lexsort((order[at], ranked[at], run))]
    return order


def _group_bounds(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets and lengths of runs of equal values in a sorted array."""
    m = len(sorted_keys)
    if m == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
    lengths = np.diff(np.append(starts, m))
    return starts, lengths


def _group_rank(mask: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """For each element, how many True elements precede it within its group (exclusive count)."""
    dtype = np.int32 if len(mask) < 2**31 else np.int64
    before = np.cumsum(mask, dtype=dtype)
    before -= mask
    if len(starts):
        before -= np.repeat(before[starts], lengths)
    return before


def _take_first(mask: np.ndarray, count: int) -> np.ndarray:
    """mask restricted to its first ``count`` True elements."""
    if count <= 0:
        return np.zeros_like(mask)
    out = mask.copy()
    hits = np.flatnonzero(mask)
    if len(hits) > count:
        out[hits[count:]] = False
    return out


def _rows(idx: np.ndarray, n: int, *arrays: np.ndarray) -> list[np.ndarray]:
    """Each of `arrays` at `idx`; the arrays themselves (read only) where `idx` is every one of
    their `n` rows in order, as for a pool loaded from the database (10⁷ rows: no copies)."""
    if len(idx) == n and (n < 2 or bool((idx[1:] > idx[:-1]).all())):
        return list(arrays)
    return [array[idx] for array in arrays]


def _eligible(inp: _Inputs) -> np.ndarray:
    """Indices of the pool (decisions 1 and 2 of the module docstring), in import order."""
    idx = _scored(inp)
    keep = _dedup(inp, idx)
    return idx if keep is None else idx[keep]


def _scored(inp: _Inputs) -> np.ndarray:
    """Indices of the scored samples not excluded, in import order (decision 1, before dedup)."""
    order, score = inp.order, inp.score
    # 1. Eligible by score and exclusion, laid out in import order so stable sorts break ties.
    ok = ~np.isnan(score)
    if inp.excluded is not None:
        ok &= ~inp.excluded
    idx = np.flatnonzero(ok)
    del ok
    o = order[idx]
    if len(o) > 1 and not (o[1:] > o[:-1]).all():
        perm = np.argsort(o, kind="stable")
        idx, o = idx[perm], o[perm]
        del perm
        if not (o[1:] > o[:-1]).all():
            raise ValueError("order must be unique among eligible samples")
    return idx


def _dedup(inp: _Inputs, idx: np.ndarray) -> np.ndarray | None:
    """Which of the scored samples `idx` survive dedup (decision 1); None when all do."""
    problem = inp.problem
    # 2. Dedup within (problem, fingerprint); already-selected keys knock out their group.
    hi, lo = _fp_columns(inp.fingerprint, len(problem), "fingerprint")
    xp, xh, xl = [inp.excluded_problems], [], []
    if inp.excluded_fingerprints is not None:
        eh, el = _fp_columns(inp.excluded_fingerprints, None, "excluded_fingerprints")
        xh.append(eh)
        xl.append(el)
    else:
        xh.append(np.zeros(0, np.uint64))
        xl.append(np.zeros(0, np.uint64))
    if inp.excluded is not None:
        ex = np.flatnonzero(inp.excluded)
        xp.append(problem[ex])
        xh.append(hi[ex])
        xl.append(lo[ex])
    return _dedup_keep(
        *_rows(idx, len(problem), problem, hi, lo),
        np.concatenate(xp),
        np.concatenate(xh),
        np.concatenate(xl),
    )


def eligible(
    problem: np.ndarray,
    order: np.ndarray,
    score: np.ndarray,
    wrong: np.ndarray,
    fingerprint: np.ndarray,
    *,
    excluded: np.ndarray | None = None,
    excluded_problems: np.ndarray | None = None,
    excluded_fingerprints: np.ndarray | None = None,
) -> np.ndarray:
    """Indices (int64, import order) of the samples any strategy may pick: the pool of
    DESIGN.md "Selection" (scored, not excluded, deduplicated). Same inputs as `select`."""
    inp = _check_inputs(
        problem,
        order,
        score,
        wrong,
        fingerprint,
        excluded,
        excluded_problems,
        excluded_fingerprints,
    )
    return _eligible(inp)


def _global_top(inp: _Inputs, K: int, n_wrong: int) -> Picks:
    """global without max_per_problem: the n_wrong best wrong, then the best of the rest."""
    idx = _eligible(inp)
    if len(idx) == 0:
        return Picks(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))
    score, w = _rows(idx, len(inp.problem), inp.score, inp.wrong)
    key = _desc_key(score)
    # Only the top K overall and the top n_wrong wrong can be picked: a fill pick outside
    # the top K would have >= K - n_wrong unpicked samples ahead of it. Prefilter to those.
    if len(key) > K:
        cand = key <= np.partition(key, K - 1)[K - 1]
        kw = key[w]
        if n_wrong and len(kw) > n_wrong:
            cand |= w & (key <= np.partition(kw, n_wrong - 1)[n_wrong - 1])
        elif n_wrong:
            cand |= w
        del kw
        sub = np.flatnonzero(cand)
        idx, key, w = idx[sub], key[sub], w[sub]
    r = np.argsort(key, kind="stable")
    wr = w[r]
    wpick = _take_first(wr, n_wrong)
    fpick = _take_first(~wpick, K - int(wpick.sum()))
    return Picks(
        np.concatenate([idx[r[wpick]], idx[r[fpick]]]),
        np.repeat([True, False], [int(wpick.sum()), int(fpick.sum())]),
    )


def select_with_phases(
    problem: np.ndarray,
    order: np.ndarray,
    score: np.ndarray,
    wrong: np.ndarray,
    fingerprint: np.ndarray,
    *,
    strategy: Strategy,
    k: int,
    wrong_fraction: float,
    max_per_problem: int | None = None,
    excluded: np.ndarray | None = None,
    excluded_problems: np.ndarray | None = None,
    excluded_fingerprints: np.ndarray | None = None,
) -> Picks:
    """`select`, also saying which picks came from the wrong-answer phase."""
    params = SelectionParams(strategy, k, wrong_fraction, max_per_problem)
    inp = _check_inputs(
        problem,
        order,
        score,
        wrong,
        fingerprint,
        excluded,
        excluded_problems,
        excluded_fingerprints,
    )
    problem, score, wrong = inp.problem, inp.score, inp.wrong
    empty = Picks(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))
    K, n_wrong, M = params.k, params.n_wrong, params.max_per_problem
    if params.strategy == "global" and M is None:
        return _global_top(inp, K, n_wrong)

    # 3. Group by problem, ranked within (import-layout positions); global also ranks overall.
    # The ranking and the dedup sort independently, so they run on two cores (NumPy lets go
    # of the GIL while sorting); ranking every scored sample and dropping the duplicates after
    # gives the same order, a stable sort's order restricted to a subset.
    idx = _scored(inp)
    if len(idx) == 0:
        return empty
    p, scored_score = _rows(idx, len(problem), problem, score)
    key = _desc_key(scored_score)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dedup") as side:
        dedup = side.submit(_dedup, inp, idx)
        grouped = _rank_order(key, p)
        r = _rank_order(key) if params.strategy == "global" else None
        keep = dedup.result()
    del key
    if keep is not None:
        idx, p = idx[keep], p[keep]
        kept_at = np.cumsum(keep) - 1  # each kept sample's position among the kept
        grouped = kept_at[grouped[keep[grouped]]]
        if r is not None:
            r = kept_at[r[keep[r]]]
        del kept_at
    (w,) = _rows(idx, len(problem), wrong)
    pg = p[grouped]
    starts, lengths = _group_bounds(pg)
    wg = w[grouped]

    if params.strategy == "per_problem":
        cap = params.per_problem_cap
        wpick = wg & (_group_rank(wg, starts, lengths) < min(n_wrong, cap))
        c_p = np.add.reduceat(wpick, starts, dtype=np.int64)
        rem = ~wpick
        fpick = rem & (_group_rank(rem, starts, lengths) < np.repeat(cap - c_p, lengths))
        picked = np.flatnonzero(wpick | fpick)
        phase = ~wpick[picked]  # False (0) for wrong-phase picks, so they come first
        gid = np.searchsorted(starts, picked, side="right")  # group number of each pick
        out = picked[np.lexsort((phase, gid))]  # positions already ranked within each group
        return Picks(idx[grouped[out]], wpick[out])

    # global with max_per_problem M: per-problem ranks come from the grouped layout,
    # the "first n" cut-offs from the global rank layout; g maps grouped -> rank position.
    rank_of = np.empty(len(r), dtype=np.int64)
    rank_of[r] = np.arange(len(r))
    g = rank_of[grouped]
    del rank_of
    wcand = np.empty(len(g), dtype=bool)
    wcand[g] = wg & (_group_rank(wg, starts, lengths) < M)
    wpick = _take_first(wcand, n_wrong)
    del wcand
    wpick_g = wpick[g]
    c_p = np.add.reduceat(wpick_g, starts, dtype=np.int64)
    rem_g = ~wpick_g
    fcand = np.empty(len(g), dtype=bool)
    fcand[g] = rem_g & (_group_rank(rem_g, starts, lengths) < np.repeat(M - c_p, lengths))
    nw = int(wpick.sum())
    fpick = _take_first(fcand, K - nw)
    return Picks(
        np.concatenate([idx[r[wpick]], idx[r[fpick]]]),
        np.repeat([True, False], [nw, int(fpick.sum())]),
    )


def select(
    problem: np.ndarray,
    order: np.ndarray,
    score: np.ndarray,
    wrong: np.ndarray,
    fingerprint: np.ndarray,
    *,
    strategy: Strategy,
    k: int,
    wrong_fraction: float,
    max_per_problem: int | None = None,
    excluded: np.ndarray | None = None,
    excluded_problems: np.ndarray | None = None,
    excluded_fingerprints: np.ndarray | None = None,
) -> np.ndarray:
    """Indices (int64) into the input arrays of the selected samples, in selection order.

    Implements DESIGN.md "Selection" with the decisions in the module docstring. ``excluded``
    marks samples selected in an earlier generation; (``excluded_problems``,
    ``excluded_fingerprints``) are the keys of earlier selections that are not in the arrays.
    No Python loop over samples: a few sorts and cumulative counts.
    """
    return select_with_phases(
        problem,
        order,
        score,
        wrong,
        fingerprint,
        strategy=strategy,
        k=k,
        wrong_fraction=wrong_fraction,
        max_per_problem=max_per_problem,
        excluded=excluded,
        excluded_problems=excluded_problems,
        excluded_fingerprints=excluded_fingerprints,
    ).indices
