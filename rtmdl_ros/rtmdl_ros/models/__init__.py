"""Model zoo: supernets, training, export, profiling (torch is imported by the submodules that need it)."""


class InputError(ValueError):
    """A frame or audio chunk a task cannot use; the message says why."""
