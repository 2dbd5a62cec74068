"""Slurm options, the user config file and the parsing of Slurm's answers: no cluster needed."""
import pytest

from engine.config import ConfigError
from seca_tui import slurm


def test_slurm_time_formats_are_read_as_slurm_reads_them():
    assert slurm.seconds("240") == 240 * 60
    assert slurm.seconds("0:30") == 30
    assert slurm.seconds("4:00:00") == 4 * 3600
    assert slurm.seconds("1-12") == 36 * 3600
    assert slurm.seconds("1-12:30") == 36 * 3600 + 30 * 60
    assert slurm.seconds("2-00:00:10") == 48 * 3600 + 10
    with pytest.raises(ConfigError, match="--time takes Slurm's format"):
        slurm.seconds("4h")


def test_the_user_config_file_gives_defaults_and_the_command_line_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert slurm.options() == slurm.SlurmOptions()  # no file: Slurm's own defaults
    (tmp_path / "seca-tui").mkdir()
    (tmp_path / "seca-tui" / "config.yaml").write_text(
        "slurm:\n  partition: gpu\n  time: 240\n  account: lab\n  extra: {mail-type: END}\n")
    opts = slurm.options(["exclude=node3"], partition="debug", qos=None)
    assert (opts.partition, opts.time, opts.account, opts.qos) == ("debug", "240", "lab", None)
    assert opts.extra == {"mail-type": "END", "exclude": "node3"}


def test_a_typo_in_the_user_config_file_is_one_sentence_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "seca-tui").mkdir()
    path = tmp_path / "seca-tui" / "config.yaml"
    path.write_text("slurm:\n  partiton: gpu\n")
    with pytest.raises(ConfigError, match=f"The 'slurm:' section of {path} has an unknown key 'partiton'"):
        slurm.options()
    path.write_text("slurm:\n  nodes: two\n")
    with pytest.raises(ConfigError, match="'nodes' .* must be a whole number"):
        slurm.options()
    for line, what in (("extra: exclusive", "a mapping"), ("partition: [gpu, cpu]", "text"), ("nodes: true", "a whole number")):
        path.write_text(f"slurm:\n  {line}\n")
        with pytest.raises(ConfigError, match=f"'{line.split(':')[0]}' in {path} must be {what}, not "):
            slurm.options()
    path.write_text("slurm:\n  time: 240\n  mem: 32\n")  # numbers where Slurm takes text: read as its text
    assert (slurm.options().time, slurm.options().mem) == ("240", "32")
    with pytest.raises(ConfigError, match="--slurm-opt takes KEY=VALUE"):
        path.write_text("")
        slurm.options(["exclusive"])


def test_sacct_lines_become_states_a_person_can_read():
    # recorded `sacct -n -P -X -o JobID,State,Reason,NodeList,Elapsed,Timelimit,ExitCode` output: no
    # accounting database runs here (CI's Slurm has none), so this path is read from text
    text = ("101|TIMEOUT|None|gpu07|04:00:12|04:00:00|0:0\n"
            "102_3|PENDING|Priority|None assigned|00:00:00|1-00:00:00|0:0\n"
            "103|CANCELLED by 1000|None|gpu02|00:10:00|04:00:00|0:15\n"
            "104|OUT_OF_MEMORY|None|gpu03|00:01:02|04:00:00|0:125\n")
    jobs = slurm.parse_sacct(text)
    assert jobs["101"].describe() == "TIMEOUT after 04:00:12"
    assert jobs["102_3"].describe() == "PENDING (Priority)"
    assert jobs["103"].state == "CANCELLED"
    assert jobs["104"].describe() == "OUT_OF_MEMORY with exit code 0:125 on gpu03"


def test_scontrol_names_array_elements_by_array_id_and_index():
    line = ("JobId=57 JobName=seca-tiny ArrayJobId=55 ArrayTaskId=2 JobState=FAILED Reason=NonZeroExitCode "
            "ExitCode=1:0 RunTime=00:00:14 TimeLimit=UNLIMITED NodeList=vm\n"
            "JobId=60 JobName=x JobState=RUNNING Reason=None RunTime=00:01:00 TimeLimit=00:05:00 NodeList=vm\n")
    jobs = slurm.parse_scontrol(line)
    assert set(jobs) == {"55_2", "60"}
    assert jobs["55_2"].describe() == "FAILED with exit code 1:0 on vm"
    assert jobs["60"].describe() == "RUNNING on vm"


def test_a_slurm_flag_without_slurm_is_refused(home):
    from tests.commands import cli

    result = cli("run", "tiny", "--partition", "gpu")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --partition is a Slurm option; add --slurm to submit to Slurm."
