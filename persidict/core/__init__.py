"""The core: the dict front every store shares, and ``FsspecDict``, the one store on fsspec."""
