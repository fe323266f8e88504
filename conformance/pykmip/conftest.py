"""Fixtures for the PyKMIP conformance suite.

The suite drives Debian's python3-pykmip 0.10 client against a live
`minikms dev` server. scripts/conformance.sh starts the server and sets
MINIKMS_PYKMIP_CONF to the pykmip.conf of its development bundle. Run with
/usr/bin/python3 (Debian's interpreter, which has the package).
"""
import os

import pytest
from kmip.core import enums
from kmip.pie.client import ProxyKmipClient

CONF = os.environ.get("MINIKMS_PYKMIP_CONF")


def pytest_collection_modifyitems(config, items):
    if not CONF:
        raise pytest.UsageError("MINIKMS_PYKMIP_CONF is not set; run scripts/conformance.sh")


def connect(section, version=enums.KMIPVersion.KMIP_1_2):
    c = ProxyKmipClient(config=section, config_file=CONF, kmip_version=version)
    c.open()
    return c


@pytest.fixture
def client_factory():
    opened = []

    def make(section, version=enums.KMIPVersion.KMIP_1_2):
        c = connect(section, version)
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


@pytest.fixture
def acme_admin(client_factory):
    return client_factory("acme-admin")


@pytest.fixture
def acme_app(client_factory):
    return client_factory("acme-app")


@pytest.fixture
def globex_admin(client_factory):
    return client_factory("globex-admin")


@pytest.fixture
def acme14(client_factory):
    return client_factory("acme-admin", enums.KMIPVersion.KMIP_1_4)
