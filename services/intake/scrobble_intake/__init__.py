"""The intake: media-server webhooks and HTTP playback events in, PlaybackEvent v1 out."""
