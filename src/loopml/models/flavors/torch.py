"""PyTorch modules (an optional extra: ``pip install 'loopml[torch]'``).

Three formats:

* ``exported_program`` (the default for an ``nn.Module``): ``torch.export`` traced on the input
  example, with a dynamic batch dimension, saved with ``torch.export.save``. Loading needs no
  Python class of yours.
* ``torchscript``: a ``torch.jit.ScriptModule`` given as the model, saved with ``torch.jit.save``.
* ``pickle`` (``flavor_options={"format": "pickle"}``): the whole module with ``torch.save``;
  loading needs the module's class importable.

Every torch format needs ``trusted=True`` to load. Pickled modules obviously run code; but
``torch.export.load`` also unpickles parts of the archive (falling back to
``weights_only=False``), its graph may name any attribute of the ``torch`` module, and PyTorch's
own documentation says never to load one from an untrusted source. For a model that loads
without trust, export it to ONNX (``torch.onnx.export``) and log that.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from loopml._lazy import require
from loopml.errors import InvalidArgument, ModelCorrupted
from loopml.models.flavors.base import LoadedModel, defined_in, installed_version, option_file

__all__ = ["FORMATS", "TorchFlavor"]

FORMATS = {"exported_program": "model.pt2", "torchscript": "model.ts", "pickle": "model.pt"}
"""Each format and the file it is saved in."""


def _torch() -> Any:
    return require("torch", "torch", "a PyTorch model")


class TorchFlavor:
    """PyTorch ``nn.Module``, ``ScriptModule`` and ``ExportedProgram`` objects."""

    name: str = "torch"
    packages: tuple[str, ...] = ("torch", "numpy")
    needs_trust: bool = True

    def can_save(self, model: object) -> bool:
        """Modules and exported programs."""
        if not defined_in(model, "torch"):
            return False
        torch = _torch()
        return isinstance(model, torch.nn.Module | torch.export.ExportedProgram)

    def save(
        self, model: Any, folder: Path, *, example: Any, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Save in the format chosen by the model's type or ``options["format"]``."""
        torch = _torch()
        fmt = options.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise InvalidArgument(f"torch format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        if isinstance(model, torch.jit.ScriptModule) and fmt in (None, "torchscript"):
            fmt = "torchscript"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated
                torch.jit.save(model, str(folder / FORMATS[fmt]))
        elif fmt == "pickle":
            torch.save(model, folder / FORMATS[fmt])
        elif isinstance(model, torch.export.ExportedProgram):
            fmt = "exported_program"
            torch.export.save(model, folder / FORMATS[fmt])
        elif fmt in (None, "exported_program"):
            fmt = "exported_program"
            torch.export.save(_export(torch, model, example), folder / FORMATS[fmt])
        else:
            raise InvalidArgument(
                f"format {fmt!r} needs a torch.jit.ScriptModule, not {type(model).__name__}"
            )
        return {"file": FORMATS[fmt], "format": fmt, "torch_version": installed_version("torch")}

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> LoadedModel:
        """Load (only ever reached with ``trusted=True``: see the module docstring)."""
        torch = _torch()
        fmt = options.get("format")
        if fmt not in FORMATS:
            raise ModelCorrupted(f"the torch model's manifest names an unknown format {fmt!r}")
        path = option_file(folder, options, self.name)
        try:
            if fmt == "exported_program":
                model = torch.export.load(path)
            elif fmt == "torchscript":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    model = torch.jit.load(str(path), map_location="cpu")
            else:
                model = torch.load(path, map_location="cpu", weights_only=False)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelCorrupted(f"PyTorch could not load {path.name}: {exc}") from exc
        return self.wrap(model, folder, options)

    def wrap(self, model: Any, folder: Path, options: Mapping[str, Any]) -> LoadedModel:
        """``predict`` runs the module without gradients and returns NumPy arrays."""
        torch = _torch()
        module = model.module() if isinstance(model, torch.export.ExportedProgram) else model
        if isinstance(module, torch.nn.Module) and not isinstance(module, torch.fx.GraphModule):
            module.eval()

        def predict(data: Any) -> Any:
            args = _tensors(torch, data)
            with torch.no_grad():
                out = module(*args)
            if isinstance(out, tuple | list):
                out = out[0]
            return out.detach().cpu().numpy() if hasattr(out, "detach") else out

        return LoadedModel(native=model, predict=predict)


def _tensors(torch: Any, data: Any) -> list[Any]:
    """Positional tensors from a prepared array, table or dict of arrays (in order)."""
    if isinstance(data, Mapping):
        return [_tensors(torch, v)[0] for v in data.values()]
    if hasattr(data, "detach"):
        return [data]
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        data = data.to_numpy(dtype=np.float32)
    return [torch.from_numpy(np.ascontiguousarray(np.asarray(data)))]


def _export(torch: Any, model: Any, example: Any) -> Any:
    if example is None:
        raise InvalidArgument(
            "saving a torch nn.Module as an exported program traces it on an input example: "
            "pass input_example=..., or flavor_options={'format': 'pickle'}"
        )
    from loopml.models import _inputs

    if _inputs.as_array(example) is None and not isinstance(example, Mapping):
        frame = _inputs.as_frame(example)
        if frame is None:
            raise InvalidArgument(f"cannot trace a torch module on a {type(example).__name__}")
        example = frame
    args = tuple(_tensors(torch, example))
    dynamic = tuple({0: torch.export.Dim.AUTO} for _ in args)
    model.eval()
    try:
        return torch.export.export(model, args, dynamic_shapes=dynamic)
    except Exception as exc:  # torch.export raises many kinds of errors for untraceable code
        raise InvalidArgument(
            f"torch.export could not trace {type(model).__name__}: {exc}; save it with "
            "flavor_options={'format': 'pickle'} instead (loading will need trusted=True)"
        ) from exc
