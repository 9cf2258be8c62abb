"""``recurrentkit fit|validate|test|predict``: the LightningCLI that runs every recipe, for every task.

Recipes are LightningCLI YAML files (``model: {class_path, init_args}``, ``data: {...}``, ``trainer: {...}``). Sizes
that only the data knows (``vocab_size``, ``num_classes``, ...) are linked from the data module into the model at
instantiation time, for every name that the chosen model's constructor accepts and the data module exposes.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import warnings
from pathlib import Path
from typing import Any

# (``char_level`` is not linked: a link would overwrite a user's ``char_level: true``; the language-model task
# ORs its own setting with the data module's in ``setup``)
LINKED_SIZES = ("vocab_size", "num_classes", "input_size", "output_size", "pad_id", "char_vocab_size",
                "label_names", "src_vocab_size", "tgt_vocab_size")
LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")


def _import(class_path: str) -> Any:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _peek_class_paths(argv: list[str]) -> dict[str, str]:
    """Find the ``model`` and ``data`` class paths a command line will select (config files, then overrides)."""
    import yaml

    found: dict[str, str] = {}
    args = list(argv)
    for index, arg in enumerate(args):
        value = None
        if arg in ("-c", "--config") and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith("--config="):
            value = arg.split("=", 1)[1]
        if value and Path(value).is_file():
            config = yaml.safe_load(Path(value).read_text()) or {}
            for key in ("model", "data"):
                section = config.get(key)
                if isinstance(section, dict) and "class_path" in section:
                    found[key] = section["class_path"]
                elif isinstance(section, str):
                    found[key] = section
        for key in ("model", "data"):
            for flag in (f"--{key}", f"--{key}.class_path"):
                if arg == flag and index + 1 < len(args) and not args[index + 1].startswith("-"):
                    found[key] = args[index + 1]
                elif arg.startswith(flag + "="):
                    found[key] = arg.split("=", 1)[1]
    return found


def _links_for(model_path: str | None, data_path: str | None) -> list[str]:
    """Names to link ``data.<name> -> model.init_args.<name>``."""
    if not model_path or not data_path:
        return []
    model_cls, data_cls = _import(model_path), _import(data_path)
    if model_cls is None or data_cls is None:
        return []
    accepted = inspect.signature(model_cls.__init__).parameters
    return [name for name in LINKED_SIZES if name in accepted and hasattr(data_cls, name)]


def _make_cli_class():
    from lightning.pytorch.cli import LightningCLI

    class RecurrentKitCLI(LightningCLI):
        """LightningCLI with the data-to-model links and an end-of-fit summary (metrics and a text sample)."""

        links: list[str] = []
        parse_only = False  # parse and validate the configuration, instantiate nothing (see parse_recipe)

        def instantiate_classes(self) -> None:
            if not self.parse_only:
                super().instantiate_classes()

        def add_arguments_to_parser(self, parser) -> None:
            from ..callbacks.divergence import DivergenceGuard
            from ..callbacks.preemption import PreemptionCheckpoint

            # always-on safety callbacks, each with its own group: --divergence.enabled false, --preemption.*
            parser.add_lightning_class_args(DivergenceGuard, "divergence")
            parser.add_lightning_class_args(PreemptionCheckpoint, "preemption")
            parser.add_argument("--ckpt_settings", type=str, default="error",
                                help="with --ckpt_path, when the configured model settings differ from the "
                                     "checkpoint's: 'error' (default) stops on differences that change weight shapes "
                                     "and otherwise uses the checkpoint's values; 'checkpoint' always uses the "
                                     "checkpoint's; 'config' keeps the configured ones (shapes must match). Every "
                                     "difference is printed.")
            for name in self.links:
                parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")
            parser.add_argument("--predictions_file", type=str | None, default=None,
                                help="predict: where to write the predictions (default: next to "
                                     "data.predict_file, as <name>.predictions.tsv, or .predictions.conllu for "
                                     "a tagger reading CoNLL-U, or <name>.translations.txt for translation)")
            parser.add_argument("--threads", type=int | None, default=None,
                                help="torch.set_num_threads before anything is built (1 is often fastest on a "
                                     "shared CPU)")

        def before_instantiate_classes(self) -> None:
            config = self.config[self.subcommand] if self.subcommand else self.config
            check_model_settings(config)  # an unknown cell name is reported before the data is loaded
            threads = config.get("threads")
            if threads is not None:
                if threads < 1:
                    raise ValueError(f"--threads must be >= 1, got {threads}")
                import torch

                torch.set_num_threads(threads)

        def _parse_ckpt_path(self) -> None:
            """Compare the checkpoint's model settings with the configured ones (see recurrentkit.checkpointing)."""
            subcommand = self.config.get("subcommand")
            if not subcommand:
                return
            config = self.config[subcommand]
            ckpt_path = config.get("ckpt_path")
            if not ckpt_path or ckpt_path in ("last", "best", "hpc") or "://" in str(ckpt_path):
                return super()._parse_ckpt_path()
            apply_checkpoint_settings(self, subcommand, ckpt_path, config.get("ckpt_settings") or "error")

        def predict(self, model, datamodule=None, **kwargs) -> None:
            predictions = self.trainer.predict(model, datamodule=datamodule, **kwargs)
            path = self.config[self.subcommand].get("predictions_file")
            writer = getattr(datamodule, "write_predictions", None)
            if callable(writer):  # a data module that knows its input format writes the predictions back in it
                print(f"predictions written to {writer(predictions, path)}")
                return
            write_prediction_table(predictions, model, datamodule, path)

        def _instantiate_trainer(self, config: dict[str, Any], callbacks: list) -> Any:
            from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, RichProgressBar

            from ..callbacks.preemption import PreemptionCheckpoint

            # Lightning refuses a checkpoint callback when checkpointing is off
            off = config.get("enable_checkpointing") is False
            callbacks = [c for c in callbacks if not (isinstance(c, PreemptionCheckpoint) and (off or not c.enabled))]
            configured_all = list(config.get("callbacks") or []) + list(callbacks)
            if not off and not any(isinstance(c, ModelCheckpoint) for c in configured_all):
                # Lightning adds its default ModelCheckpoint only when no Checkpoint callback is present, and the
                # PreemptionCheckpoint is one: add the default explicitly
                callbacks = [ModelCheckpoint(), *callbacks]

            fall_back_from_emulated_bf16(config)
            wanted = config.get("enable_progress_bar", True) is not False
            configured = list(config.get("callbacks") or []) + list(callbacks)
            if wanted and importlib.util.find_spec("rich") and not any(isinstance(c, ProgressBar) for c in configured):
                callbacks = [*callbacks, RichProgressBar()]
            return super()._instantiate_trainer(config, callbacks)

        def after_fit(self) -> None:
            print_summary(self.trainer, self.model)

    return RecurrentKitCLI


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX), as oneDNN reports it."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def fall_back_from_emulated_bf16(config: dict[str, Any]) -> None:
    """A recipe's ``precision: bf16-mixed`` is a speed setting. On a CPU without native bfloat16 it would be emulated
    and run slower than float32, so training on such a CPU uses ``32-true`` instead, with a notice."""
    import torch

    if str(config.get("precision")) != "bf16-mixed":
        return
    accelerator = str(config.get("accelerator") or "auto")
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if on_cpu and not cpu_has_native_bf16():
        print("recurrentkit: this CPU has no native bfloat16 (AVX512-BF16 or AMX), where bf16-mixed is slower than "
              "float32: training in 32-true instead", file=sys.stderr)
        config["precision"] = "32-true"


def check_model_settings(config: Any) -> None:
    """Checks that need no data, run before anything is instantiated: an unknown cell name is reported now, with
    the close matches, not after the data has been loaded."""
    from ..cells.registry import get_cell_class
    from ..errors import ConfigError

    model = config.get("model") if hasattr(config, "get") else None
    init_args = model.get("init_args") if model is not None and hasattr(model, "get") else None
    cell = init_args.get("cell") if init_args is not None and hasattr(init_args, "get") else None
    if isinstance(cell, str):
        try:
            get_cell_class(cell)
        except KeyError as error:
            raise ConfigError(f"model.init_args.cell: {error.args[0]}") from None


def apply_checkpoint_settings(cli: Any, subcommand: str, ckpt_path: str, policy: str) -> None:
    """Read ``ckpt_path`` (clear errors for a missing, empty or corrupt file), report where its model settings
    differ from the configured ones, and apply ``policy`` (``--ckpt_settings``)."""
    from ..checkpointing import POLICIES, CheckpointError, compare_settings, load_checkpoint

    if policy not in POLICIES:
        raise CheckpointError(f"--ckpt_settings must be one of {', '.join(POLICIES)}, got {policy!r}")
    checkpoint = load_checkpoint(ckpt_path)
    model = cli.config[subcommand].get("model")
    class_path = model.get("class_path") if hasattr(model, "get") else None
    init_args = model.get("init_args") if hasattr(model, "get") else None
    report = compare_settings(checkpoint, class_path, init_args or {}, skip=tuple(cli.links))
    if report.differences or report.class_paths:
        text = report.describe(ckpt_path)
        if report.changes_shapes and policy in ("error", "config"):
            raise CheckpointError(f"{text}\n  The checkpoint cannot be loaded into the configured model. Remove these "
                                  "settings from the recipe/command line, or pass --ckpt_settings checkpoint to "
                                  "use the checkpoint's.")
        if policy == "config":
            print(f"{text}\n  -> the configured values are used (--ckpt_settings config).", file=sys.stderr)
            return
        print(f"{text}\n  -> the checkpoint's values are used (--ckpt_settings config keeps the configured ones).",
              file=sys.stderr)
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    hparams.pop("_instantiator", None)
    if not hparams:
        return
    if "_class_path" in hparams:
        hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
    cli.config = cli.parser.parse_object({subcommand: {"model": hparams}}, cli.config)


def write_prediction_table(predictions, model, datamodule, path: str | None) -> str | None:
    """Write a classifier's predictions as a TSV (label, confidence, class probabilities, text); return the path."""
    label_names = getattr(model, "label_names", None) or getattr(datamodule, "label_names", None)
    if not predictions or not label_names or not isinstance(predictions[0], dict) or "probs" not in predictions[0]:
        return None
    from ..callbacks.predictions import write_predictions

    texts = getattr(datamodule, "predict_texts", None)
    texts = texts() if callable(texts) else texts
    source = getattr(datamodule, "predict_file", None)
    if path is None:
        path = str(Path(source).with_suffix(".predictions.tsv")) if source else "predictions.tsv"
    written = write_predictions(predictions, path, label_names, texts=texts)
    print(f"predictions written to {written}")
    return written


def print_summary(trainer, model) -> None:
    """Print the final validation metrics and, for a language model, a generated sample."""
    if trainer.global_rank != 0:
        return
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val")}
    if metrics:
        print("validation: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
    generate = getattr(model, "generate", None)
    if callable(generate) and getattr(model, "vocab", None) is not None:
        try:
            sample = generate(getattr(model, "default_prompt", "\n"), max_new_tokens=300, temperature=0.8, seed=0)
        except (ValueError, RuntimeError) as err:  # a prompt the vocabulary can't encode, say
            print(f"(no sample: {err})")
        else:
            print("sample:\n" + sample)


def build_cli(argv: list[str], run: bool = True, from_command_line: bool = False, parse_only: bool = False) -> Any:
    """The recurrentkit LightningCLI for ``argv``; with ``run=False`` (no subcommand in ``argv``) it only
    instantiates ``cli.model``, ``cli.datamodule`` and ``cli.trainer``, for programs that drive them; with
    ``parse_only`` as well, it instantiates nothing and ``cli.config`` is the validated configuration."""
    from lightning.pytorch import LightningDataModule, LightningModule

    cli_class = _make_cli_class()
    peeked = _peek_class_paths(argv)
    cli_class.links = _links_for(peeked.get("model"), peeked.get("data"))
    cli_class.parse_only = parse_only
    with warnings.catch_warnings():
        if not from_command_line:  # a program passing its own argv: Lightning's "args and sys.argv" notice is noise
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        return cli_class(
            LightningModule,
            LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            auto_configure_optimizers=False,
            save_config_kwargs={"overwrite": True},
            seed_everything_default=1234,
            args=None if from_command_line else argv,
            run=run,
        )


def parse_recipe(argv: list[str]) -> Any:
    """The configuration ``recurrentkit fit`` would run for ``argv`` (e.g. ``["-c", recipe]``), parsed and validated
    against the classes' signatures but not instantiated (no data is read). Sizes the data module links into the
    model (``vocab_size``, ...) are absent: give them to :func:`instantiate_model`."""
    return build_cli(list(argv), run=False, parse_only=True).config


def instantiate_model(config: Any, **init_args: Any) -> Any:
    """The task of a :func:`parse_recipe` configuration, built as the CLI builds it (optimizer and scheduler
    specs become callables), with ``init_args`` added, e.g. ``vocab_size=793_471`` in place of the data module's."""
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningModule

    model = config.model.clone()
    for name, value in init_args.items():
        model.init_args[name] = value
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningModule, "model", required=True)
    return parser.instantiate_classes(parser.parse_object({"model": model.as_dict()})).model


def run_lightning(argv: list[str], from_command_line: bool = False) -> int:
    """``recurrentkit fit|validate|test|predict ...`` through LightningCLI."""
    build_cli(argv, run=True, from_command_line=from_command_line)
    return 0
