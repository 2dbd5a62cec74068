"""The new run form: preset, dataset, task split, method or ablation, device, free-form overrides.

The form is turned into ``key=value`` overrides on top of the preset and validated as the CLI does
(``launcher.prepare``: the engine's config loader, then the dataset and task plan) before anything
starts, so the user sees the same one-sentence error the CLI prints. Blank fields keep the preset's value.
With "queue" ticked the run is submitted to the run queue (``seca-tui run --queue``) instead of started:
it starts at once if a device is free, else when one frees up. With "Slurm" ticked it is submitted as
a Slurm job (``seca-tui run --slurm``), the "Slurm opts" field's ``key=value`` pairs over the user
config file's defaults.
"""
from __future__ import annotations

from functools import partial

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Select, Static, TextArea

from engine import config as engine_config
from seca_tui import launcher, queue, slurm
from seca_tui.screens.live import LiveScreen
from seca_tui.store import Store

FROM_PRESET = ""  # the Select value meaning "leave the preset's value"

DATASETS = engine_config.DataConfig.__dataclass_fields__["name"].metadata["choices"]
DEVICES = ("auto", "cpu", "cuda")


def preset_choices() -> list[str]:
    """Preset names with ``demo`` first: the one that runs anywhere in a minute."""
    names = engine_config.preset_names()
    return sorted(names, key=lambda n: (n != "demo", n))


def _field(label: str, widget) -> Horizontal:
    return Horizontal(Label(label, classes="field-label"), widget, classes="field")


class NewRunScreen(Screen):
    """ctrl+t checks the form, ctrl+s launches (or queues, with the queue box ticked: ctrl+o);
    escape goes back without starting anything."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+t", "validate", "Check"),
        Binding("ctrl+s", "launch", "Launch"),
        Binding("ctrl+o", "toggle_queue", "Queue on/off"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._attempt = 0  # numbers the checks, so a slow old one cannot overwrite a newer verdict

    def compose(self) -> ComposeResult:
        presets = preset_choices()
        keep = ("(preset)", FROM_PRESET)
        with VerticalScroll(id="form"):
            yield _field("Preset", Select([(p, p) for p in presets], value=presets[0] if presets else Select.NULL,
                                          allow_blank=not presets, compact=True, id="preset"))
            yield _field("Name", Input(placeholder="(preset name)", compact=True, id="name"))
            yield _field("Dataset", Select([keep] + [(d, d) for d in DATASETS], value=FROM_PRESET,
                                           allow_blank=False, compact=True, id="dataset"))
            yield _field("Tasks", Input(placeholder="(preset)  number of tasks", type="integer", compact=True,
                                        id="n_tasks"))
            yield _field("Increment", Input(placeholder="(preset)  classes per task after the first",
                                            type="integer", compact=True, id="increment"))
            yield _field("Method", Select([keep] + [(m, m) for m in engine_config.VARIANTS], value=FROM_PRESET,
                                          allow_blank=False, compact=True, id="method"))
            yield _field("Device", Select([keep] + [(d, d) for d in DEVICES], value=FROM_PRESET,
                                          allow_blank=False, compact=True, id="device"))
            yield _field("GPUs", Input(placeholder="(one)  a count like 2, or ids like 0,1", compact=True,
                                       id="gpus"))
            yield _field("Queue", Checkbox("wait in the run queue for a free device",
                                           compact=True, id="queue"))
            yield _field("Slurm", Checkbox("submit as a Slurm job (defaults: ~/.config/seca-tui/config.yaml)",
                                           compact=True, id="slurm"))
            yield _field("Slurm opts", Input(placeholder="partition=gpu time=4:00:00 (any sbatch option)",
                                             compact=True, id="slurm-options"))
            yield Label("Overrides, one key=value per line (they win over the fields above):")
            yield TextArea(id="overrides")
            yield Static(id="verdict")
            with Horizontal(classes="buttons"):
                yield Button("Check", id="validate")
                yield Button("Launch", variant="primary", id="launch")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#preset", Select).focus()

    # ------------------------------------------------------------------------------ the form

    def _value(self, widget_id: str) -> str:
        widget = self.query_one(f"#{widget_id}")
        value = widget.value if isinstance(widget, (Input, Select)) else ""
        return "" if value is Select.NULL else str(value).strip()

    def overrides(self) -> list[str]:
        """The form as overrides in the order they apply: fields, then the free-form lines."""
        out: list[str] = []
        if self._value("dataset"):
            out.append(f"data.name={self._value('dataset')}")
        if self._value("n_tasks"):
            out.append(f"scenario.n_tasks={self._value('n_tasks')}")
        if self._value("increment"):
            out.append(f"scenario.increment={self._value('increment')}")
        out += engine_config.VARIANTS.get(self._value("method"), ("", []))[1]
        if self._value("device"):
            out.append(f"train.device={self._value('device')}")
        text = self.query_one("#overrides", TextArea).text
        out += [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
        return out

    def gpus(self) -> int | list[int] | None:
        """``2`` → 2 processes, ``0,1`` → those devices, blank → the launcher's default."""
        text = self._value("gpus")
        return launcher.parse_gpus(text) if text else None

    def _verdict(self, ok: bool | None, text: str) -> None:
        """✓ or ✗ and a sentence; ``ok=None`` while the check runs."""
        mark, style = {True: ("✓ ", "bold green"), False: ("✗ ", "bold red"), None: ("… ", "dim")}[ok]
        verdict = self.query_one("#verdict", Static)
        verdict.update(Text.assemble((mark, style), text))
        verdict.set_class(ok is False, "error")

    # ------------------------------------------------------------------------------ actions

    @property
    def queued(self) -> bool:
        return self.query_one("#queue", Checkbox).value

    def slurm_options(self) -> slurm.SlurmOptions | None:
        """The Slurm options when the run goes to Slurm, else None."""
        if not self.query_one("#slurm", Checkbox).value:
            return None
        if self.queued:
            raise engine_config.ConfigError("Slurm queues the jobs itself; untick the run queue.")
        return slurm.form_options(self._value("slurm-options"))

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        label = "Submit" if self.query_one("#slurm", Checkbox).value else "Queue" if self.queued else "Launch"
        self.query_one("#launch", Button).label = label

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_launch() if event.button.id == "launch" else self.action_validate()

    def action_toggle_queue(self) -> None:
        self.query_one("#queue", Checkbox).toggle()

    def action_validate(self) -> None:
        self._submit(launch=False)

    def action_launch(self) -> None:
        self._submit(launch=True)

    def _submit(self, launch: bool) -> None:
        """Read the form here, check (and launch) on a worker: the dataset check may list many files."""
        try:
            preset = self._value("preset")
            if not preset:
                raise engine_config.ConfigError("Choose a preset.")
            form = (preset, self.overrides(), self._value("name") or None, self.gpus(), self.slurm_options())
        except engine_config.ConfigError as error:
            self._verdict(False, str(error))
            return
        self._attempt += 1
        if launch:
            self.query_one("#launch", Button).disabled = True  # one launch per press, however fast the keys
        self._verdict(None, "checking the config and the dataset…")
        self.run_worker(partial(self._prepare, *form, launch, self.queued, self._attempt), thread=True, group="form")

    def _prepare(
        self, preset: str, overrides: list[str], name: str | None, gpus, slurm_options: slurm.SlurmOptions | None,
        launch: bool, queued: bool, attempt: int
    ) -> None:
        """On a worker thread: validate like the CLI does (config, dataset, task plan; with ``queued``, that
        the queue's devices can hold the run; for Slurm, that its commands are here, not the device); when
        launching, create the run dir and start the engine, then show the run live, or submit it to the
        queue or to Slurm and go back to the runs."""
        try:
            cfg = launcher.prepare(preset, overrides, name, here=slurm_options is None)
            if queued:
                queue.check_fits(gpus, queue.devices())
            if slurm_options is not None and slurm.available():
                raise engine_config.ConfigError(slurm.available())
            if launch and slurm_options is not None:
                started = self._submit_slurm(preset, overrides, name, gpus, cfg, slurm_options)
            elif launch and queued:
                started = self._submit_queued(preset, overrides, name, gpus, cfg)
            elif launch:
                handle = launcher.create_run(preset, overrides, name=name, home=self.app.home, gpus=gpus, cfg=cfg)
                launcher.start(handle.run_dir)
        except Exception as error:  # noqa: BLE001 - any failure is reported in the form, in one line
            text = str(error) if isinstance(error, engine_config.ConfigError) else f"{type(error).__name__}: {error}"
            self.app.call_from_thread(self._failed, text, attempt)
            return
        if launch and slurm_options is not None:
            self.app.call_from_thread(self._submitted, *started)
        elif launch and queued:
            self.app.call_from_thread(self._queued, *started)
        elif launch:
            self.app.call_from_thread(self._open_live, handle.run_id, handle.run_dir)
        else:
            self.app.call_from_thread(self._valid, cfg, attempt)

    def _submit_queued(self, preset: str, overrides: list[str], name: str | None, gpus,
                       cfg: engine_config.Config) -> tuple[launcher.RunHandle, list[str] | None]:
        """Queue the run as ``seca-tui run --queue`` does: it starts now if a device is free; else a
        background scheduler starts it later, whether or not this TUI is still open. Returns the run
        and the devices it started on (None: it waits)."""
        store = Store.open(self.app.home)
        try:
            handle = launcher.create_run(preset, overrides, name=name, home=self.app.home, gpus=gpus, store=store,
                                         cfg=cfg, queued=True)
            started = dict(queue.schedule(store))
            if queue.pending(store):
                queue.ensure_scheduler(self.app.home)
        finally:
            store.close()
        return handle, started.get(handle.run_id)

    def _submit_slurm(self, preset: str, overrides: list[str], name: str | None, gpus, cfg: engine_config.Config,
                      options: slurm.SlurmOptions) -> tuple[launcher.RunHandle, str]:
        """Submit the run as ``seca-tui run --slurm`` does; returns it and its job id. Should Slurm
        refuse it, the run is removed again."""
        from seca_tui import housekeeping

        store = Store.open(self.app.home)
        try:
            handle = launcher.create_run(preset, overrides, name=name, home=self.app.home, gpus=gpus, store=store, cfg=cfg)
            try:
                (job,) = slurm.submit([handle.run_dir], options, store)
            except engine_config.ConfigError:
                housekeeping.remove(store, handle.run_id)
                raise
        finally:
            store.close()
        return handle, job

    def _submitted(self, handle: launcher.RunHandle, job: str) -> None:
        self.notify(f"Submitted {handle.config.name} to Slurm as job {job}.")
        self.app.browser.table.select(handle.run_id)
        self.app.pop_screen()

    def _queued(self, handle: launcher.RunHandle, devices: list[str] | None) -> None:
        if devices:
            self.notify(f"Started {handle.config.name} on {','.join(devices)}: a device was free.")
            self._open_live(handle.run_id, handle.run_dir)
            return
        self.notify(f"Queued {handle.config.name}: it starts when a device is free (x in the runs list cancels it).")
        self.app.browser.table.select(handle.run_id)
        self.app.pop_screen()

    def _valid(self, cfg: engine_config.Config, attempt: int) -> None:
        if attempt == self._attempt:  # a later check supersedes this one
            self._verdict(True, f"{cfg.name}: {cfg.method} on {cfg.data.name}, {cfg.scenario.n_tasks} tasks, "
                                f"{cfg.train.epochs} epochs, device {cfg.train.device}")

    def _failed(self, text: str, attempt: int) -> None:
        if attempt == self._attempt:
            self._verdict(False, text)
        self.query_one("#launch", Button).disabled = False

    def _open_live(self, run_id: str, run_dir) -> None:
        self.app.switch_screen(LiveScreen(run_id, run_dir))  # back from it leads to the browser, not the form

