"""Losses and metrics used as the user's own ('tests.user_losses:squared_error') in the tests."""


def squared_error(outputs, targets):
    return (outputs - targets) ** 2


def absolute_error(outputs, targets):
    return (outputs - targets).abs()


def mean_only(outputs, targets):
    return ((outputs - targets) ** 2).mean()
