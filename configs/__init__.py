"""The shipped configs, one `get_config()` per simulator (installed as `simvae_tf_configs`)."""
