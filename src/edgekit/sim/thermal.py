"""A first-order thermal model of the Raspberry Pi 4 under sustained inference.

The SoC is one thermal mass: dT/dt = (T_ambient + P * R_th - T) / tau. Running inference back to
back, the chip heats towards T_ambient + P * R_th; when it reaches the throttle temperature (80 C,
the firmware's soft limit) the ARM clock drops to the throttled clock, which lowers both the
power and the compute speed: the compute term of every layer grows by the clock ratio. It rises
again when the chip has cooled a few degrees below the limit (hysteresis), so a long run
settles into an average clock. The whole run is stepped once per simulated second.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import EdgekitError


@dataclass
class ThermalParams:
    ambient_c: float
    throttle_c: float
    r_th: float            # C per W, chip to ambient
    tau_s: float           # time constant of the chip + board
    clock_hz: float
    throttled_clock_hz: float
    active_w: float        # SoC power while inferring at full clock
    idle_w: float
    hysteresis_c: float = 2.0


@dataclass
class ThermalTrace:
    seconds: list[float]
    temperature_c: list[float]
    clock_hz: list[float]
    latency_s: list[float]
    throttle_start_s: float | None

    def summary(self) -> dict:
        n = len(self.latency_s)
        return {"duration_s": self.seconds[-1] if self.seconds else 0.0,
                "start_temperature_c": round(self.temperature_c[0], 1),
                "final_temperature_c": round(self.temperature_c[-1], 1),
                "throttle_start_s": self.throttle_start_s,
                "latency_ms_first_minute": round(1e3 * _mean(self.latency_s[:60]), 3),
                "latency_ms_last_minute": round(1e3 * _mean(self.latency_s[max(0, n - 60):]), 3),
                "slowdown": round(_mean(self.latency_s[max(0, n - 60):]) / _mean(self.latency_s[:60]), 3)}


def _mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


def sustained(p: ThermalParams, duration_s: float, latency_at) -> ThermalTrace:
    """Simulate back-to-back inference for duration_s; latency_at(clock_hz) gives one inference's time."""
    temp, clock, throttled = p.ambient_c, p.clock_hz, False
    trace = ThermalTrace([], [], [], [], None)
    # dynamic power scales with the clock (voltage stays: the firmware lowers only the clock at 80 C)
    dynamic = p.active_w - p.idle_w
    for second in range(int(duration_s) + 1):
        trace.seconds.append(float(second))
        trace.temperature_c.append(temp)
        trace.clock_hz.append(clock)
        trace.latency_s.append(latency_at(clock))
        if not throttled and temp >= p.throttle_c:
            throttled, clock = True, p.throttled_clock_hz
            trace.throttle_start_s = trace.throttle_start_s if trace.throttle_start_s is not None else float(second)
        elif throttled and temp <= p.throttle_c - p.hysteresis_c:
            throttled, clock = False, p.clock_hz
        power = p.idle_w + dynamic * clock / p.clock_hz
        temp += (p.ambient_c + power * p.r_th - temp) / p.tau_s  # one-second Euler step (tau >> 1 s)
    return trace


def parse_duration(text: str) -> float:
    """'10m', '90s', '1h', '45' (seconds) -> seconds."""
    t = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if t and t[-1] in units:
            return float(t[:-1]) * units[t[-1]]
        return float(t)
    except ValueError:
        raise EdgekitError(f"cannot read duration '{text}'; write it like 90s, 10m or 1h") from None
