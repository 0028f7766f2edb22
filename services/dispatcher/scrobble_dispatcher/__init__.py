"""The dispatcher service: scrobble work to the five external APIs, paced, retried, or dead."""
