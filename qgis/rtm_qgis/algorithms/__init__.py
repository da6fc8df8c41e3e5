"""The algorithms of the rtm provider, one module each."""
