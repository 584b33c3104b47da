"""infra/signals.py: stopping signals unwind the kit; create calls finish first; cleanup is not cut short."""

import os
import signal

import pytest

from atbb_kit.infra import signals


def test_a_signal_interrupts_at_once_outside_a_critical_section():
    with pytest.raises(signals.SignalReceived) as info:
        signals.Guard().on_signal(signal.SIGTERM)
    assert info.value.signum == signal.SIGTERM


def test_a_signal_inside_a_create_call_waits_for_it_to_finish():
    guard = signals.Guard()
    created = []
    with pytest.raises(signals.SignalReceived), guard.critical():
        with guard.critical():
            guard.on_signal(signal.SIGINT)  # does not raise here...
            created.append("container")
        created.append("volume")  # ...nor when the inner section ends
    assert created == ["container", "volume"]  # both exist, so the sweep will find both
    assert guard.pending == signal.SIGINT


def test_signals_during_cleanup_are_acknowledged_not_raised():
    said: list[str] = []
    guard = signals.Guard(said.append)
    guard.cleaning = True
    guard.on_signal(signal.SIGINT)
    with guard.critical():
        pass
    assert guard.pending == signal.SIGINT
    assert said and "finishing the cleanup first" in said[0]


def test_interrupted_exit_codes_follow_the_shell():
    assert signals.Interrupted("x", None, signal.SIGINT).exit_code == 130
    assert signals.Interrupted("x", None, signal.SIGTERM).exit_code == 143


# --- the task ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (KeyboardInterrupt(), signal.SIGINT),
        (signals.SignalReceived(signal.SIGTERM), signal.SIGTERM),
        (signals.SignalReceived(signal.SIGHUP), signal.SIGHUP),
    ],
)
def test_number_names_the_signal_behind_an_interrupt(exc, expected):
    assert signals.number(exc) == expected


def test_signal_received_unwinds_like_ctrl_c():
    # A KeyboardInterrupt: no `except Exception` in the kit can swallow it.
    assert isinstance(signals.SignalReceived(signal.SIGTERM), KeyboardInterrupt)
    assert not isinstance(signals.SignalReceived(signal.SIGTERM), Exception)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_raising_turns_a_real_signal_into_an_exception_and_restores_the_handler(sig):
    before = signal.getsignal(sig)
    with pytest.raises(signals.SignalReceived) as info, signals.raising():
        os.kill(os.getpid(), sig)
    assert info.value.signum == sig
    assert signal.getsignal(sig) is before


def test_ignored_holds_real_signals_off_until_it_ends():
    with signals.ignored():
        for sig in signals.STOPPING:
            assert signal.getsignal(sig) is signal.SIG_IGN
            os.kill(os.getpid(), sig)  # ignored: nothing is raised, the process lives on
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
