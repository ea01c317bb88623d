from rhino_mlir.passes import REGISTRY


def test_registry_keys_are_pass_names():
    assert REGISTRY and all(key == cls.name for key, cls in REGISTRY.items())
