"""Model zoo: supernets, training, export, profiling (torch is imported by the submodules that need it)."""


# What a task consumes (a task set's `input:`, a family's .input): camera frames
# (sensor_msgs/Image) or microphone sound (rtmdl_interfaces/AudioChunk).
IMAGE, SOUND = 'image', 'sound'
INPUT_KINDS = (IMAGE, SOUND)
SAMPLE_RATES_HZ = (4000, 192000)       # the sound rates accepted at all (chunks, models)


class InputError(ValueError):
    """A frame or audio chunk a task cannot use; the message says why."""
