import pytest

from jaxcond import models


def test_registry():
  assert set(models.MODELS) == {"bpr_mf", "lightgcn", "ease"}
  assert models.get_model("bpr_mf").trainable and not models.get_model("ease").trainable
  with pytest.raises(ValueError, match="unknown model 'svd'.*bpr_mf"):
    models.get_model("svd")
