"""The model catalogue: every model the API serves, as data.

A catalogue is a list of entries in WaveSpeed's own ``GET /api/v3/models`` entry
format (``model_id``, ``name``, ``type``, ``base_price``, ``api_schema`` with its
``request_schema``), each with an ``x-mock`` object saying how the mock imitates
the model: its output (:mod:`.outputs`), its price rule, its typical duration, its
sources and the facts that were chosen (inferred). The built-in catalogue is the
JSON files under ``models/``; users add theirs (``--catalogue FILE``), and a
saved ``/api/v3/models`` answer works as it is. The code never names a model:
Ovi's richer rules are its entries' data (its contract schema, its size rule).

Example:
    >>> spec = builtin_catalogue().get("wavespeed-ai/z-image/turbo")
    >>> spec.outputs_for({"prompt": "a fox", "size": "512*512"}).width
    512
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ._formats import format_checker
from ._resources import SCHEMA_BASE_URI, inlined_schema, load_schema, schema_registry
from .errors import ContractError, UnknownModelError, WavespeedMockError
from .facts import seed_rule
from .outputs import (
    OutputPlan,
    OutputRule,
    kind_for_type,
    plan_inputs,
    plan_outputs,
    shared_plan,
)
from .validation import _by_relevance, _strict_copy, _to_contract_error, _validator

__all__ = [
    "Catalogue",
    "CatalogueError",
    "ModelSpec",
    "PriceRule",
    "builtin_catalogue",
    "load_catalogue_file",
]

MOCK_KEY = "x-mock"
"""The key of an entry's mock-only data; never served."""
MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*){1,3}$")
"""A model id: ``owner/model`` with up to two more parts. [inferred from the
catalogue's ids]"""
ANY_MODEL_PRICE = 0.01
"""What a model served by ``--any-model`` costs a run. [inferred]"""
_WEBHOOK_URL = {"$ref": "common.json#/$defs/webhook_url"}


class CatalogueError(WavespeedMockError, ValueError):
    """A catalogue file or entry the mock cannot use; the message says where."""


@dataclass(frozen=True)
class PriceRule:
    """An entry's ``x-mock.price``: what one run costs, from its request and plan."""

    per: str = "run"
    amount: float | None = None
    unit: float = 1.0
    minimum: float = 0.0
    of: str = "text"
    by: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, price: Mapping[str, Any] | None) -> PriceRule:
        price = dict(price or {})
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in price.items() if k in known})

    def cost(
        self, base_price: float, body: Mapping[str, Any], plan: OutputPlan
    ) -> float:
        """USD for one run (6 decimals)."""
        amount = base_price if self.amount is None else float(self.amount)
        if self.per == "image":
            total = amount * plan.count
        elif self.per == "second":
            seconds = max(plan.duration_s or 0.0, self.minimum)
            total = amount * math.ceil(round(seconds / self.unit, 9))
        elif self.per == "character":
            text = body.get(self.of)
            length = max(len(text) if isinstance(text, str) else 0, self.minimum)
            total = amount * max(1, math.ceil(length / self.unit))
        else:
            total = amount
        for name, table in self.by.items():
            if name in body:
                total *= float(
                    table.get(str(body[name]).lower(), table.get(str(body[name]), 1.0))
                )
        return round(total, 6)


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """One model the API serves: its served entry and how the mock imitates it."""

    id: str
    name: str
    description: str
    type: str
    base_price: float
    entry: Mapping[str, Any]
    """The entry as ``GET /api/v3/models`` serves it (no ``x-mock``)."""
    request_schema: Mapping[str, Any]
    output: OutputRule
    price: PriceRule = field(default_factory=PriceRule)
    contract: str | None = None
    """A contract schema file that validates requests instead of
    ``request_schema`` (Ovi's: it carries the documented facts and their tags)."""
    processing_s: float | None = None
    """Typical generation time on the real API (the ``realistic`` profile)."""
    sources: tuple[str, ...] = ()
    inferred: tuple[str, ...] = ()
    any_model: bool = False
    """Served by ``--any-model``: a permissive schema, the kind from the id."""
    engine_model: str | None = None
    """A model family an engine may run for real (``ovi``); None: synthetic only."""

    @property
    def path(self) -> str:
        """The submit path, ``/api/v3/<model id>``."""
        return f"/api/v3/{self.id}"

    @property
    def schema_base(self) -> str:
        """The URI the validation schema's references resolve against."""
        return SCHEMA_BASE_URI + (self.contract or "common.json")

    @cached_property
    def image_field(self) -> str | None:
        """The property holding the input image (the first frame), if any."""
        props = self.request_schema.get("properties", {})
        for name, spec in props.items():
            accept = str(spec.get("x-accept", "")) if isinstance(spec, dict) else ""
            if name in ("image", "images", "image_url") or accept.startswith("image"):
                return str(name)
        return None

    @property
    def takes_image(self) -> bool:
        return self.image_field is not None

    @cached_property
    def text_field(self) -> str:
        """The request property whose text the output derives from."""
        props = self.request_schema.get("properties", {})
        return next(
            (k for k in ("prompt", "text", "input", "lyrics") if k in props), "prompt"
        )

    def outputs_for(self, body: Mapping[str, Any]) -> OutputPlan:
        """What a run with ``body`` makes (kind, format, size, length, count).

        Worked out once per distinct set of the values it reads (a suite sends
        a few shapes of body with many prompts), then shared."""
        key = plan_inputs(self.output, body)
        if key is None:
            return self._plan(body)
        return _memo_plan(self, key)

    def _plan(self, body: Mapping[str, Any]) -> OutputPlan:
        return plan_outputs(
            self.output,
            self.request_schema,
            body,
            image_field=self.image_field,
            speech="speech" in self.type,
            text_field=self.text_field,
        )

    def price_for(self, body: Mapping[str, Any] | None = None) -> float:
        """The charge for a run with ``body`` (the defaults when None)."""
        body = body or {}
        return self.price.cost(self.base_price, body, self.outputs_for(body))

    # -- requests -------------------------------------------------------------

    def validation_schema(self, *, strict: bool = False) -> dict[str, Any]:
        """The schema a submit body is checked against.

        The contract file where the entry names one; else the served
        ``request_schema``, which outside strict mode accepts unknown fields
        (ignored, as the contract's own schemas do) and a body ``webhook_url``.
        """
        if self.contract is not None:
            schema = inlined_schema(self.contract)
            return (
                _strict_copy(schema, SCHEMA_BASE_URI + self.contract)
                if strict
                else schema
            )
        return _served_validation_schema(self, strict)

    def declared_schema(self, *, strict: bool = False) -> dict[str, Any]:
        """:meth:`validation_schema` with the contract's references kept (they
        name the contract's forms, such as its images, for generators)."""
        if self.contract is None:
            return self.validation_schema(strict=strict)
        schema = load_schema(self.contract)
        if strict:
            return _strict_copy(schema, SCHEMA_BASE_URI + self.contract)
        return schema

    def request_errors(
        self, body: Any, *, strict: bool = False
    ) -> Iterator[ContractError]:
        """Every violation in a submit body."""
        name = self.contract or self.id
        for error in self._validator(strict).iter_errors(body):
            yield _to_contract_error(_by_relevance(error), name)

    def validate(self, body: Any, *, strict: bool = False) -> None:
        """Raise the most relevant :class:`ContractError`, or return None."""
        error = best_match(self._validator(strict).iter_errors(body))
        if error is not None:
            raise _to_contract_error(_by_relevance(error), self.contract or self.id)

    def _validator(self, strict: bool) -> Draft202012Validator:
        if self.contract is not None:
            return _validator(self.contract, strict)
        return _served_validator(self, strict)

    # -- building ------------------------------------------------------------------

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any], *, source: str = "") -> ModelSpec:
        """A spec from one catalogue entry (WaveSpeed's shape, ``x-mock`` optional).

        Raises:
            CatalogueError: the entry lacks a model id or a usable request schema.
        """
        where = f" in {source}" if source else ""
        model_id = entry.get("model_id")
        if not isinstance(model_id, str) or not MODEL_ID.match(model_id):
            raise CatalogueError(
                f"A catalogue entry{where} has model_id {model_id!r}: expected an id "
                "such as 'owner/model' or 'owner/model/variant' (lower case)."
            )
        served = {k: v for k, v in entry.items() if k != MOCK_KEY}
        mock = entry.get(MOCK_KEY) or {}
        if not isinstance(mock, dict):
            raise CatalogueError(f"{model_id}{where}: {MOCK_KEY} must be an object.")
        schema = _run_schema(served)
        if not isinstance(schema, dict):
            raise CatalogueError(
                f"{model_id}{where}: no api_schema.api_schemas[type=model_run]"
                ".request_schema object; the mock needs it to check requests."
            )
        type_ = str(served.get("type") or "")
        contract = mock.get("contract")
        if contract is not None and contract not in _contract_files():
            raise CatalogueError(
                f"{model_id}{where}: x-mock.contract {contract!r} is not a schema "
                "of the contract."
            )
        try:
            base_price = float(served.get("base_price") or 0.0)
            output = OutputRule.from_entry(mock.get("output"), type_ or model_id)
            price = PriceRule.from_entry(mock.get("price"))
        except (TypeError, ValueError) as exc:
            raise CatalogueError(f"{model_id}{where}: {exc}") from None
        return cls(
            id=model_id,
            name=str(served.get("name") or model_id),
            description=str(served.get("description") or ""),
            type=type_,
            base_price=base_price,
            entry=served,
            request_schema=schema,
            output=output,
            price=price,
            contract=contract,
            processing_s=_float_or_none(mock.get("processing_s")),
            sources=tuple(str(s) for s in mock.get("sources", ())),
            inferred=tuple(str(s) for s in mock.get("inferred", ())),
            engine_model=mock.get("engine_model"),
        )

    @classmethod
    def any_model_spec(cls, model_id: str, base_url: str = "") -> ModelSpec:
        """A permissive spec for an id no catalogue knows (``--any-model``): any
        body object, the output kind from the id's task words."""
        kind = kind_for_type(model_id)
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                "prompt": {"type": "string", "description": "The prompt."},
                "seed": {"type": "integer", "default": -1, "minimum": -1},
            },
            "x-order-properties": ["prompt", "seed"],
            "additionalProperties": True,
        }
        entry = {
            "model_id": model_id,
            "name": model_id,
            "description": f"Served by --any-model: the output kind ({kind}) is "
            "inferred from the id.",
            "type": model_id.rsplit("/", 1)[-1],
            "base_price": ANY_MODEL_PRICE,
            "api_schema": {"api_schemas": [_run_entry(model_id, schema, base_url)]},
        }
        return cls(
            id=model_id,
            name=model_id,
            description=str(entry["description"]),
            type=str(entry["type"]),
            base_price=ANY_MODEL_PRICE,
            entry=entry,
            request_schema=schema,
            output=OutputRule(kind=kind),
            inferred=("everything: served by --any-model",),
            any_model=True,
        )

    def served(
        self, base_url: str | None = None, sort_order: int | None = None
    ) -> dict[str, Any]:
        """The entry as ``GET /api/v3/models`` answers it (``server`` rebased)."""
        entry = copy.deepcopy(dict(self.entry))
        entry.setdefault("model_id", self.id)
        if sort_order is not None:
            entry.setdefault("sort_order", sort_order)
        for run in entry.get("api_schema", {}).get("api_schemas", []):
            if base_url is not None and isinstance(run, dict) and "server" in run:
                run["server"] = base_url
        return entry


@lru_cache(maxsize=4096)
def _memo_plan(spec: ModelSpec, key: tuple[Any, ...]) -> OutputPlan:
    """The plan for a body holding just ``key``'s values (see ``plan_inputs``)."""
    return shared_plan(spec._plan({name: value for name, _, value in key}))


def _float_or_none(value: Any) -> float | None:
    return (
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool)
        else None
    )


def _run_entry(model_id: str, schema: Mapping[str, Any], server: str) -> dict[str, Any]:
    return {
        "type": "model_run",
        "method": "POST",
        "server": server or "https://api.wavespeed.ai",
        "api_path": f"/api/v3/{model_id}",
        "request_schema": schema,
    }


def _run_schema(entry: Mapping[str, Any]) -> Any:
    api_schema = entry.get("api_schema")
    runs = api_schema.get("api_schemas") if isinstance(api_schema, dict) else None
    if not isinstance(runs, list):
        return None
    for run in runs:
        if isinstance(run, dict) and run.get("type", "model_run") == "model_run":
            return run.get("request_schema")
    return None


@cache
def _contract_files() -> frozenset[str]:
    from ._resources import schema_names

    return frozenset(schema_names())


# Validators per spec, built once: a spec is immutable, and a catalogue holds
# at most a few thousand of them.
_VALIDATORS: dict[tuple[int, bool], tuple[ModelSpec, Draft202012Validator]] = {}


def _served_validation_schema(spec: ModelSpec, strict: bool) -> dict[str, Any]:
    schema = copy.deepcopy(dict(spec.request_schema))
    schema.pop("$schema", None)
    schema.pop("$id", None)
    props = schema.setdefault("properties", {})
    # A file input takes a URL (an upload's, or any the service can fetch) and,
    # outside strict mode, a data: URI as the contract's own image does. [inferred]
    url = dict(inlined_schema("common.json")["$defs"]["http_url"])
    if not strict:
        url["pattern"] = "^([Hh][Tt][Tt][Pp][Ss]?://|data:)"
    url.pop("description", None)
    for prop in props.values():
        if not isinstance(prop, dict) or prop.get("x-ui-component") not in (
            "uploader",
            "uploaders",
        ):
            continue
        target = prop.get("items") if prop.get("type") == "array" else prop
        if isinstance(target, dict) and target.get("type", "string") == "string":
            target.update({k: v for k, v in url.items() if k not in target})
    seed = props.get("seed")
    if (
        not strict
        and isinstance(seed, dict)
        and seed.get("type") == "integer"
        and seed.get("maximum") == seed_rule().maximum
    ):
        # Seeds past the maximum, as an official client sends them (the
        # contract's large_seed: reduced modulo 2^31). [inferred]
        props["seed"] = {
            "anyOf": [seed, inlined_schema("common.json")["$defs"]["large_seed"]]
        }
    if strict:
        schema["additionalProperties"] = False
    else:
        schema["additionalProperties"] = True
        props.setdefault(
            "webhook_url", inlined_schema("common.json")["$defs"]["webhook_url"]
        )
    return schema


def _served_validator(spec: ModelSpec, strict: bool) -> Draft202012Validator:
    key = (id(spec), strict)
    found = _VALIDATORS.get(key)
    if found is not None and found[0] is spec:
        return found[1]
    schema = _served_validation_schema(spec, strict)
    validator = Draft202012Validator(
        schema, registry=schema_registry(), format_checker=format_checker()
    )
    if len(_VALIDATORS) > 8192:
        _VALIDATORS.clear()
    _VALIDATORS[key] = (spec, validator)
    return validator


# -- catalogues ----------------------------------------------------------------------


class Catalogue:
    """The models one server serves, by id, in order; later entries override.

    Example:
        >>> cat = Catalogue.with_files([Path("my-models.json")])
        >>> cat.get("acme/my-model").outputs_for({"prompt": "x"}).kind
        'image'
    """

    def __init__(
        self, specs: Iterable[ModelSpec] = (), *, any_model: bool = False
    ) -> None:
        self._specs: dict[str, ModelSpec] = {}
        for spec in specs:
            self._specs.pop(spec.id, None)
            self._specs[spec.id] = spec
        self.any_model = any_model
        self._guessed: dict[str, ModelSpec] = {}

    @classmethod
    def with_files(
        cls, files: Sequence[str | Path] = (), *, any_model: bool = False
    ) -> Catalogue:
        """The built-in catalogue, then each file's entries in order."""
        specs = list(builtin_catalogue())
        for path in files:
            specs.extend(load_catalogue_file(path))
        return cls(specs, any_model=any_model)

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._specs

    def ids(self) -> list[str]:
        return list(self._specs)

    def find(self, model_id: str) -> ModelSpec | None:
        """The model with this id; with ``any_model``, a permissive one for any
        well-formed unknown id; else None."""
        spec = self._specs.get(model_id)
        if spec is not None or not self.any_model:
            return spec
        if not MODEL_ID.match(model_id):
            return None
        guessed = self._guessed.get(model_id)
        if guessed is None:
            if len(self._guessed) > 10_000:
                self._guessed.clear()
            guessed = self._guessed[model_id] = ModelSpec.any_model_spec(model_id)
        return guessed

    def get(self, model_id: str) -> ModelSpec:
        """The model with this id.

        Raises:
            UnknownModelError: naming the nearest ids and how to add the model.
        """
        spec = self.find(model_id)
        if spec is None:
            raise UnknownModelError(model_id, self.ids(), self.nearest(model_id))
        return spec

    def nearest(self, model_id: str, n: int = 3) -> list[str]:
        """Up to ``n`` known ids closest to ``model_id``."""
        ids = self.ids()
        close = difflib.get_close_matches(model_id, ids, n=n, cutoff=0.5)
        if close:
            return close
        tail = model_id.rsplit("/", 1)[-1]
        return [i for i in ids if tail and tail in i][:n]

    def for_path(self, path: str) -> ModelSpec | None:
        """The model a submit path ``/api/v3/<id>`` names, if served."""
        if not path.startswith("/api/v3/"):
            return None
        return self.find(path[len("/api/v3/") :])


def _entries_of(document: Any, source: str) -> list[Mapping[str, Any]]:
    """The entries of a catalogue document: an ``/api/v3/models`` answer (its
    envelope or its ``data``), or ``{"models": [...]}``."""
    if isinstance(document, dict):
        for key in ("data", "models"):
            if isinstance(document.get(key), list):
                document = document[key]
                break
        else:
            document = [document] if "model_id" in document else None
    if not isinstance(document, list) or not all(isinstance(e, dict) for e in document):
        raise CatalogueError(
            f'{source}: expected a GET /api/v3/models answer ({{"code": 200, '
            '"data": [entries]}), a list of entries, or one entry.'
        )
    return document


def load_catalogue_file(path: str | Path) -> list[ModelSpec]:
    """The models of one catalogue file.

    Raises:
        CatalogueError: the file cannot be read, is not JSON, or holds an entry
            the mock cannot use (named in the message).
    """
    source = str(path)
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(
            f"Cannot read the catalogue {source!r}: {exc.strerror or exc}"
        ) from None
    except ValueError as exc:
        raise CatalogueError(f"The catalogue {source!r} is not JSON: {exc}") from None
    return [
        ModelSpec.from_entry(e, source=source) for e in _entries_of(document, source)
    ]


@cache
def builtin_catalogue() -> Catalogue:
    """The catalogue that ships with the package (``contracts/models/*.json``)."""
    folder = resources.files(__package__ or "wavespeed_mock.contracts") / "models"
    specs: list[ModelSpec] = []
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".json"):
            continue
        document = json.loads(item.read_text(encoding="utf-8"))
        specs.extend(
            ModelSpec.from_entry(e, source=f"models/{item.name}")
            for e in _entries_of(document, item.name)
        )
    # Ovi first: the flagship, and the order tools list models in.
    specs.sort(key=lambda s: (s.engine_model is None, 0))
    return Catalogue(specs)
