"""Memory readings of the current process from /proc (Linux), for the analyzer benchmark's children:
a tool's peak is VmHWM after clear_refs reset it, minus the VmRSS before the call."""
import re


def proc_status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{key}:\s+(\d+)", f.read(), re.M).group(1))


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
