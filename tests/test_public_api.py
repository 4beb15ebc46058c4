import makerlab


def test_all_is_sorted_and_every_name_is_importable():
    assert makerlab.__all__ == sorted(makerlab.__all__)
    for name in makerlab.__all__:
        assert getattr(makerlab, name) is not None


def test_public_classes_are_exported():
    public = {name for name, value in vars(makerlab).items()
              if isinstance(value, type) and not name.startswith("_")}
    assert public <= set(makerlab.__all__)
