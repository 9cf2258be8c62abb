"""Every recipe parses, instantiates and trains one batch through the real CLI, on tiny stand-in data.

`RK_DATA_DIR` points the presets at tests/fixtures/fake_data (the same layout as ../shared/data), so a recipe
can't rot silently (litgpt's config-hub test does the same). The One Billion Word recipes train on their own fake
release in tests/test_lm1b.py; here every YAML file, those and the `_base` fragments included, is parsed by the
`recurrentkit` command itself.
"""

from pathlib import Path

import pytest
import yaml

from recurrentkit import cli, tasks

ROOT = Path(__file__).resolve().parents[1]
FAKE_DATA = ROOT / "tests" / "fixtures" / "fake_data"
ALL_YAML = sorted((ROOT / "recipes").rglob("*.yaml"))
RECIPES = sorted(p for p in ALL_YAML if p.parent.name not in ("_base", "lm1b"))
TASKS = set(tasks.__all__) - {"Task"}  # every task kind the library exports
SHRINK = {  # keep the biggest recipes quick on CPU; the recipe's own structure (cell, layers, output) is kept
    "hidden_size": 24, "embedding_size": 24,
}


def _overrides(recipe: Path) -> list[str]:
    config = yaml.safe_load(recipe.read_text())
    args = ["--trainer.fast_dev_run=true", "--trainer.logger=false", "--trainer.enable_progress_bar=false"]
    init_args = (config.get("model") or {}).get("init_args") or {}
    for name, value in SHRINK.items():
        if name in init_args and isinstance(init_args[name], int) and init_args[name] > value:
            args.append(f"--model.init_args.{name}={value}")
    data_args = (config.get("data") or {}).get("init_args") or {}
    if "train_file" in data_args:  # recipes that name files (word2vec) read the stand-in corpus instead
        corpus = FAKE_DATA / "wikitext-2" / "train.txt"
        args += [f"--data.init_args.train_file={corpus}", "--data.init_args.min_count=1"]
    for name in ("analogy_path", "vectors_path"):
        if name in init_args:
            args.append(f"--model.init_args.{name}=null")
    if init_args.get("cutoffs"):  # the stand-in corpora have about 20 word types
        args.append("--model.init_args.cutoffs=[5,10]")
    cell_kwargs = init_args.get("cell_kwargs") or {}
    if cell_kwargs.get("proj_size", 0) >= SHRINK["hidden_size"]:
        args.append("--model.init_args.cell_kwargs={proj_size: 12}")
        if init_args.get("tie_weights"):  # a tied projection feeds the embedding-sized output layer
            args.append("--model.init_args.embedding_size=12")
    if init_args.get("layer_sizes"):
        sizes = [SHRINK["hidden_size"]] * (len(init_args["layer_sizes"]) - 1) + [SHRINK["embedding_size"]]
        args.append(f"--model.init_args.layer_sizes={sizes}")
    return args


def test_recipes_are_found():
    assert len(RECIPES) >= 10 and len(ALL_YAML) > len(RECIPES)
    names = {p.relative_to(ROOT / "recipes").as_posix() for p in RECIPES}
    assert {"ptb/zaremba-small.yaml", "shakespeare/char-lstm.yaml", "ptb/awd-lstm.yaml"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.relative_to(ROOT / "recipes").as_posix())
def test_recipe_header_states_command_and_target(recipe):
    header = recipe.read_text().split("\n", 12)[:12]
    text = "\n".join(header)
    assert "recurrentkit " in text, "a recipe opens with the command that runs it"
    assert "python -m" not in recipe.read_text(), "recipes run through the one `recurrentkit` command"
    assert any(word in text.lower() for word in ("target", "should reach", "expected")), \
        "a recipe states the number it should reach"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.relative_to(ROOT / "recipes").as_posix())
def test_recipe_runs_one_batch(recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("RK_DATA_DIR", str(FAKE_DATA))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["fit", "-c", str(recipe), *_overrides(recipe)]) == 0


def test_every_task_kind_has_a_recipe_run_here():
    """So a recipe of every task kind trains a batch end to end in `test_recipe_runs_one_batch`."""
    kinds = {yaml.safe_load(p.read_text())["model"]["class_path"].rpartition(".")[2] for p in RECIPES}
    assert TASKS <= kinds


@pytest.mark.parametrize("path", sorted(set(ALL_YAML) - set(RECIPES)),
                         ids=lambda p: p.relative_to(ROOT / "recipes").as_posix())
def test_every_other_yaml_parses_through_the_command(path, capsys):
    """The files `test_recipe_runs_one_batch` does not train (One Billion Word recipes, which train on their own
    fake release in test_lm1b.py; `_base` fragments; the n-gram arguments): `recurrentkit fit -c FILE
    --print_config` validates every key against the constructors' signatures."""
    config = yaml.safe_load(path.read_text())
    if config.get("command") == "ngram":  # the n-gram baseline records its `recurrentkit ngram` arguments
        from recurrentkit.cli.ngram import ngram_parser

        args = config["args"]
        parsed = ngram_parser().parse_args(["--train", "t.txt", "--test", "u.txt", "--order", str(args["order"]),
                                            "--mode", args["mode"], "--unk", args["unk"]])
        assert parsed.order == args["order"] and parsed.mode == args["mode"]
        return
    files = ["-c", str(path)]
    if path.parent.name == "_base":  # a fragment added to a full recipe
        files = ["-c", str(ROOT / "recipes" / "debug" / "tiny-lm.yaml"), *files]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fit", *files, "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == (config.get("model") or printed["model"])["class_path"]


def test_every_recipe_folder_is_documented():
    page = (ROOT / "docs" / "recipes.md").read_text()
    for recipe in RECIPES + sorted((ROOT / "recipes" / "lm1b").glob("*.yaml")):
        folder = recipe.parent.name
        assert f"{folder}/" in page, f"docs/recipes.md does not mention recipes/{folder}/"


def _checkpoint_args(recipe: Path) -> list[dict]:
    callbacks = ((yaml.safe_load(recipe.read_text()) or {}).get("trainer") or {}).get("callbacks") or []
    return [c.get("init_args") or {} for c in callbacks if isinstance(c, dict)
            and c.get("class_path", "").endswith("ModelCheckpoint")]


@pytest.mark.parametrize("recipe", [p for p in ALL_YAML if any(a.get("monitor") for a in _checkpoint_args(p))],
                         ids=lambda p: p.relative_to(ROOT / "recipes").as_posix())
def test_monitored_recipes_also_write_the_newest_state_to_last_ckpt(recipe):
    # with a monitor, Lightning's save_last rewrites last.ckpt only on a new best: last.ckpt would not be the newest
    checkpoints = _checkpoint_args(recipe)
    assert not any(a.get("monitor") and a.get("save_last") for a in checkpoints), "save_last next to a monitor"
    last = [a for a in checkpoints if a.get("filename") == "last" and not a.get("monitor")]
    assert last, "no unmonitored ModelCheckpoint(filename: last)"
    best_dirs = {a.get("dirpath") for a in checkpoints if a.get("monitor")}
    assert last[0].get("dirpath") in best_dirs, "last.ckpt is not next to the best checkpoint"
