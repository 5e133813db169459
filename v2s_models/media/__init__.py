"""Video and audio files: decoding clips (`decoding`), writing sound onto video (`mux`), optical flow (`flow`)
and the visual feature extractors (`visual`). The data stages (`dataprep`) and generation both use these."""
