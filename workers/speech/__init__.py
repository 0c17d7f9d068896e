"""Speech layer: audio validation (``audio``) and faster-whisper transcription (``transcriber``)."""
