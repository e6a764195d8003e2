"""The synthetic soundtrack: speech-like bursts for ``<S>`` spans, a bed per caption.

No speech synthesis: each ``<S>...<E>`` span becomes voiced, syllable-paced bursts
(a harmonic source with a vowel colour per syllable and a breath of noise for a
consonant), as many syllables as the text has, spread across the clip in the
order written. Each ``<AUDCAP>...<ENDAUDCAP>`` caption becomes a noise bed whose
colour, level and slow swell come from the caption and the seed; words for music
add a soft chord. A quiet room tone is always there, as Ovi always returns audio.
"""

from __future__ import annotations

import re
import zlib
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from .prompt_tags import PromptTags

__all__ = ["SAMPLE_RATE", "synthesize_audio"]

SAMPLE_RATE = 16_000
"""Ovi's audio rate (mono); the writer resamples to 44.1 kHz stereo."""

_SYLLABLE_S = 0.19
_WORD_GAP_S = 0.06
_SPAN_GAP_S = 0.3
_EDGE_S = 0.15
_TABLE = 2048
_MIN_SPEED = 0.35  # the fastest speech is 1/0.35 ~ 3x the natural pace
# Rough first and second formants (Hz) of the five written vowels.
_FORMANTS = {"a": (750, 1250), "e": (500, 1900), "i": (300, 2300), "o": (500, 900),
             "u": (350, 800), "y": (320, 2100)}  # fmt: skip
_VOWEL_GROUP = re.compile(r"[aeiouy]+", re.IGNORECASE)
_WORD = re.compile(r"\w+", re.UNICODE)
_MUSIC = re.compile(
    r"music|melod|piano|guitar|song|sing|chord|synth|orchestra|violin|hum",
    re.IGNORECASE,
)


def synthesize_audio(
    tags: PromptTags, *, seed: int, duration_s: float, sample_rate: int = SAMPLE_RATE
) -> npt.NDArray[np.float32]:
    """Mono float32 samples in [-1, 1] spanning ``duration_s``.

    Deterministic: the same tags and seed give the same samples.
    """
    count = max(1, round(duration_s * sample_rate))
    root = np.random.SeedSequence([seed & 0xFFFFFFFFFFFFFFFF, 0xA0D10])
    room_seq, *span_seqs = root.spawn(1 + len(tags.speech) + len(tags.captions))
    out = _coloured_noise(np.random.default_rng(room_seq), count, tilt=1.2) * 0.006
    for caption, seq in zip(tags.captions, span_seqs[len(tags.speech) :], strict=True):
        rng = np.random.default_rng([*seq.generate_state(2), _crc(caption)])
        out += _bed(caption, rng, count, sample_rate)
    if tags.speech:
        out += _speech(tags.speech, span_seqs[: len(tags.speech)], count, sample_rate)
    peak = float(np.abs(out).max())
    if peak > 0.89:
        out *= 0.89 / peak
    return out.astype(np.float32)


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def _fft_length(count: int) -> int:
    """The smallest 2**a * 3**b * 5**c >= count: FFTs of such lengths are fast
    (5 s at 16 kHz is 80,667 samples = 3 * 3 * 8963, some 20x slower)."""
    best = 1 << max(0, (count - 1).bit_length())
    power3 = 1
    while power3 < best:
        power5 = power3
        while power5 < best:
            length = power5
            while length < count:
                length *= 2
            best = min(best, length)
            power5 *= 5
        power3 *= 3
    return best


def _coloured_noise(
    rng: np.random.Generator, count: int, *, tilt: float
) -> npt.NDArray[np.float64]:
    """Noise with a 1/f**tilt power slope, scaled to unit RMS."""
    length = _fft_length(count)
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    spectrum *= freqs ** (-tilt / 2)
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n=length)[:count]
    rms = float(np.sqrt(np.mean(noise * noise))) or 1.0
    return noise / rms


def _bed(
    caption: str, rng: np.random.Generator, count: int, rate: int
) -> npt.NDArray[np.float64]:
    """A background bed: shaped noise with a slow swell, a chord for music words."""
    length = _fft_length(count)
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1.0 / rate)
    centre = rng.uniform(150.0, 2500.0)
    width = rng.uniform(0.5, 1.5)  # octaves
    band = np.exp(-0.5 * (np.log2(np.maximum(freqs, 1.0) / centre) / width) ** 2)
    tilt = np.maximum(freqs, 20.0) ** (-rng.uniform(0.2, 0.8))
    spectrum *= band * tilt
    bed = np.fft.irfft(spectrum, n=length)[:count]
    bed /= float(np.sqrt(np.mean(bed * bed))) or 1.0
    t = np.arange(count) / rate
    rate_hz, offset = rng.uniform(0.08, 0.4), rng.uniform(0.0, 2 * np.pi)
    swell = 0.75 + 0.25 * np.sin(2 * np.pi * rate_hz * t + offset)
    bed *= swell * rng.uniform(0.05, 0.09)
    if _MUSIC.search(caption):
        root_hz = 110.0 * 2 ** (int(rng.integers(0, 12)) / 12)
        fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.3)
        for step in (0, 4, 7, 12) if rng.random() < 0.5 else (0, 3, 7, 12):
            hz = root_hz * 2 ** (step / 12)
            bed += 0.03 * fade * np.sin(2 * np.pi * hz * t + rng.uniform(0, 6.3))
    return bed


def _speech(
    spans: tuple[str, ...], seqs: list[np.random.SeedSequence], count: int, rate: int
) -> npt.NDArray[np.float64]:
    """Every span's syllables, laid out in order across the clip."""
    plans = [_syllables(text) for text in spans]
    natural = sum(
        sum(_SYLLABLE_S + (_WORD_GAP_S if end else 0.0) for _, _, end in plan)
        for plan in plans
    ) + _SPAN_GAP_S * (len(plans) - 1)
    available = count / rate - 2 * _EDGE_S
    # Long text speaks faster, down to a floor, then runs to the end and stops.
    speed = min(1.0, max(_MIN_SPEED, available / natural)) if natural > 0 else 1.0
    out = np.zeros(count, dtype=np.float64)
    cursor = round(_EDGE_S * rate)
    for plan, seq in zip(plans, seqs, strict=True):
        rng = np.random.default_rng(seq)
        f0 = rng.uniform(95.0, 230.0)
        for vowel, consonant, word_end in plan:
            length = round(_SYLLABLE_S * speed * rng.uniform(0.8, 1.2) * rate)
            if cursor + length > count:
                return out
            burst = _syllable(vowel, consonant, f0, length, rate, rng)
            out[cursor : cursor + length] += burst
            cursor += length
            if word_end:
                cursor += round(_WORD_GAP_S * speed * rate)
        cursor += round(_SPAN_GAP_S * speed * rate)
    return out


def _syllables(text: str) -> list[tuple[str, bool, bool]]:
    """(vowel, starts with a consonant, ends a word) for each syllable of ``text``."""
    plan: list[tuple[str, bool, bool]] = []
    for word in _WORD.findall(text):
        groups = list(_VOWEL_GROUP.finditer(word))
        if not groups:  # "hmm", digits, other scripts: one syllable per 3 letters
            beats = max(1, len(word) // 3)
            plan.extend(("a", True, i == beats - 1) for i in range(beats))
            continue
        for i, group in enumerate(groups):
            consonant = group.start() > (groups[i - 1].end() if i else 0) or (
                i == 0 and group.start() > 0
            )
            plan.append((group.group()[0].lower(), consonant, i == len(groups) - 1))
    return plan


@lru_cache(maxsize=64)
def _vowel_period(vowel: str, f0: float) -> npt.NDArray[np.float64]:
    """One period of a voiced ``vowel`` at ``f0``: harmonics under its formants.

    Read back at the gliding pitch, a period table costs one lookup a sample
    instead of one sine per harmonic per sample. A speaker keeps one ``f0``, so
    each vowel's table is made once per speaker.
    """
    f1, f2 = _FORMANTS.get(vowel, (600, 1500))
    harmonics = np.arange(1, int(3800 // f0) + 1, dtype=np.float64)
    centre = harmonics * f0
    weights = (
        np.exp(-0.5 * ((centre - f1) / 130.0) ** 2)
        + 0.6 * np.exp(-0.5 * ((centre - f2) / 200.0) ** 2)
        + 0.08
    ) / harmonics
    grid = np.arange(_TABLE) / _TABLE
    period: npt.NDArray[np.float64] = weights @ np.sin(
        2 * np.pi * np.outer(harmonics, grid)
    )
    period.flags.writeable = False
    return period


def _syllable(
    vowel: str,
    consonant: bool,
    f0: float,
    length: int,
    rate: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """One voiced burst: harmonics of a gliding pitch under the vowel's formants."""
    t = np.arange(length) / rate
    glide = f0 * (1.0 + rng.uniform(-0.08, 0.08)) * (1.0 - 0.12 * t / max(t[-1], 1e-3))
    cycles = np.cumsum(glide) / rate
    period = _vowel_period(vowel, f0)
    voiced = period[(cycles * _TABLE).astype(np.int64) % _TABLE]
    voiced /= float(np.abs(voiced).max()) or 1.0
    # Rise fast, hold, fall: a syllable, not a tone.
    envelope = np.sin(np.pi * np.linspace(0.0, 1.0, length)) ** 0.6
    burst = voiced * envelope * 0.32
    if consonant:
        attack = min(length, round(0.035 * rate))
        hiss = rng.standard_normal(attack) * np.linspace(0.12, 0.0, attack)
        burst[:attack] += hiss
    return burst
