"""The error every layer raises for bad input."""


class DataError(ValueError):
  """Bad input data: the message names what is wrong and where."""
