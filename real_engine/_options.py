"""The Ovi engine's own options: one dataclass, offered as ``--ovi-*`` flags.

Each field is stated once, with its type and help, and the :class:`EngineOption`
list the server turns into flags (``--ovi-checkout``) and variables
(``WAVESPEED_MOCK_OVI_CHECKOUT``) is read from the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..mock_server.core.engine import EngineOption, unknown_option

__all__ = ["OVI_OPTIONS", "OviOptions"]


def _flag(kind: type[Any], help: str) -> dict[str, Any]:
    """A field's metadata: what the server needs to offer it as a flag."""
    return {"type": kind, "help": help}


@dataclass(frozen=True, kw_only=True)
class OviOptions:
    """Where Ovi is and how to run it; the values of the ``--ovi-*`` flags.

    Example:
        >>> OviOptions(checkout=Path("/opt/Ovi")).checkpoint_dir.as_posix()
        '/opt/Ovi/ckpts'
    """

    checkout: Path | None = field(
        default=None, metadata=_flag(Path, "path of a character-ai/Ovi checkout")
    )
    checkpoints: Path | None = field(
        default=None, metadata=_flag(Path, "folder of Ovi's checkpoints (ckpt_dir)")
    )
    """Defaults to ``<checkout>/ckpts``, Ovi's own default."""
    variant: str = field(
        default="720x720_5s", metadata=_flag(str, "model variant (default 720x720_5s)")
    )
    device: int = field(default=0, metadata=_flag(int, "CUDA device index (default 0)"))
    cpu_offload: bool = field(default=False, metadata=_flag(bool, "Ovi's CPU offload"))
    fp8: bool = field(default=False, metadata=_flag(bool, "Ovi's fp8 weights"))
    devices: str | None = field(
        default=None,
        metadata=_flag(
            str,
            "CUDA device indexes, comma-separated (0,1,2,3): one worker and one "
            "model per GPU, each job to an idle one; replaces --ovi-device",
        ),
    )
    """Text as on the command line (``"0,1"``); :attr:`device_list` parses it."""
    qint8: bool = field(
        default=False,
        metadata=_flag(bool, "Ovi's qint8 quantization (optimum-quanto), any variant"),
    )

    @property
    def checkpoint_dir(self) -> Path | None:
        """``checkpoints``, else ``<checkout>/ckpts``; None when neither is known."""
        if self.checkpoints is not None:
            return self.checkpoints
        return None if self.checkout is None else self.checkout / "ckpts"

    @property
    def device_list(self) -> tuple[int, ...]:
        """The GPUs to run a worker on: ``devices`` if given, else ``(device,)``.

        Raises:
            ValueError: ``devices`` is not a comma-separated list of distinct
                indexes.

        Example:
            >>> OviOptions(devices="0, 2").device_list
            (0, 2)
        """
        if self.devices is None or not str(self.devices).strip():
            return (self.device,)
        parts = [p.strip() for p in str(self.devices).split(",")]
        if not all(p.isdigit() for p in parts):
            raise ValueError(
                f"--ovi-devices {self.devices!r} is not a comma-separated list of "
                "CUDA device indexes such as 0,1,2,3"
            )
        indexes = tuple(int(p) for p in parts)
        if len(set(indexes)) != len(indexes):
            raise ValueError(
                f"--ovi-devices {self.devices!r} names a device twice; one worker "
                "holds a whole model, so each GPU can take one"
            )
        return indexes

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> OviOptions:
        """Options from values by name (``engine_option_values`` gives them).

        A name left out, or given as None, keeps its default; paths may be strings.

        Raises:
            EngineError: a name that is not an option, with the closest one.
        """
        known = {f.name: f for f in fields(cls)}
        for name in values:
            if name not in known:
                raise unknown_option("ovi", name, list(known))
        given: dict[str, Any] = {}
        for name, value in values.items():
            if value is None:
                continue
            kind = known[name].metadata["type"]
            if kind is Path:
                value = Path(value)
            elif name == "devices" and not isinstance(value, str):
                value = ",".join(str(int(v)) for v in value)  # a list in Python
            given[name] = value
        return cls(**given)


OVI_OPTIONS: tuple[EngineOption, ...] = tuple(
    EngineOption(f.name, f.metadata["type"], f.default, f.metadata["help"])
    for f in fields(OviOptions)
)
"""What the server offers as ``--ovi-<name>`` and ``WAVESPEED_MOCK_OVI_<NAME>``."""
