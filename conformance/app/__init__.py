"""Layer 9, the application: the command line (one function per command), progress lines, fuzzing, the GPU job and
the release history, each calling the layers below."""
