"""miniKMS driven by the PyKMIP 0.10 client (Debian python3-pykmip)."""
import os
import uuid

import pytest
from kmip.core import enums, objects as cobjects, primitives, utils
from kmip.core.factories import attributes as attr_factory
from kmip.core.factories.payloads import response as response_factory
from kmip.core.messages import payloads
from kmip.core import exceptions as kmip_exceptions
from kmip.pie import exceptions, objects

AF = attr_factory.AttributeFactory()


# PyKMIP raises pie's KmipOperationFailure from the classic calls and core's
# OperationFailure from the newer attribute calls.
FAILURE = (exceptions.KmipOperationFailure, kmip_exceptions.OperationFailure)


def reason_of(excinfo):
    return excinfo.value.reason


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def new_aes(client, name=None, activate=True, length=256):
    uid = client.create(enums.CryptographicAlgorithm.AES, length, name=name,
                        cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT,
                                                  enums.CryptographicUsageMask.DECRYPT])
    if activate:
        client.activate(uid)
    return uid


def state_of(client, uid):
    _, attrs = client.get_attributes(uid, ["State"])
    assert len(attrs) == 1
    return attrs[0].attribute_value.value


# --- objects --------------------------------------------------------------

def test_create_get_destroy_aes256(acme_admin):
    uid = acme_admin.create(enums.CryptographicAlgorithm.AES, 256, name=unique("k"))
    key = acme_admin.get(uid)
    assert isinstance(key, objects.SymmetricKey)
    assert key.cryptographic_algorithm == enums.CryptographicAlgorithm.AES
    assert key.cryptographic_length == 256
    assert len(key.value) == 32
    assert state_of(acme_admin, uid) == enums.State.PRE_ACTIVE
    acme_admin.destroy(uid)
    assert state_of(acme_admin, uid) == enums.State.DESTROYED
    with pytest.raises(exceptions.KmipOperationFailure) as e:
        acme_admin.get(uid)
    assert reason_of(e) == enums.ResultReason.ITEM_NOT_FOUND


@pytest.mark.parametrize("length", [128, 192, 256])
def test_create_aes_lengths(acme_admin, length):
    uid = acme_admin.create(enums.CryptographicAlgorithm.AES, length)
    assert len(acme_admin.get(uid).value) == length // 8
    acme_admin.destroy(uid)


def test_create_invalid_length_is_invalid_field(acme_admin):
    with pytest.raises(exceptions.KmipOperationFailure) as e:
        acme_admin.create(enums.CryptographicAlgorithm.AES, 100)
    assert reason_of(e) == enums.ResultReason.INVALID_FIELD


def test_register_get_secret_data(acme_admin):
    secret = objects.SecretData(b"correct horse battery staple", enums.SecretDataType.PASSWORD, name=unique("s"))
    uid = acme_admin.register(secret)
    got = acme_admin.get(uid)
    assert isinstance(got, objects.SecretData)
    assert got.value == b"correct horse battery staple"
    assert got.data_type == enums.SecretDataType.PASSWORD
    acme_admin.destroy(uid)


def test_register_get_opaque(acme_admin):
    blob = os.urandom(200)
    uid = acme_admin.register(objects.OpaqueObject(blob, enums.OpaqueDataType.NONE, name=unique("o")))
    got = acme_admin.get(uid)
    assert isinstance(got, objects.OpaqueObject)
    assert got.value == blob
    acme_admin.destroy(uid)
    with pytest.raises(exceptions.KmipOperationFailure):
        acme_admin.get(uid)


def test_register_symmetric_key_round_trip(acme_admin):
    raw = os.urandom(16)
    uid = acme_admin.register(objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 128, raw))
    assert acme_admin.get(uid).value == raw
    acme_admin.destroy(uid)


# --- locate ---------------------------------------------------------------

def test_locate_by_name_and_paging(client_factory):
    c = client_factory("acme-admin", enums.KMIPVersion.KMIP_1_4)
    group = unique("grp")
    uids = []
    for i in range(5):
        uids.append(c.create(enums.CryptographicAlgorithm.AES, 128, name="%s-%d" % (group, i)))
        c.modify_attribute  # keep the client warm
    by_name = c.locate(attributes=[AF.create_attribute(enums.AttributeType.NAME, "%s-3" % group)])
    assert by_name == [uids[3]]
    # The five keys share an Object Group: add it, then page through it.
    for u in uids:
        add_attribute(c, u, AF.create_attribute(enums.AttributeType.OBJECT_GROUP, group))
    filt = [AF.create_attribute(enums.AttributeType.OBJECT_GROUP, group)]
    assert c.locate(attributes=filt) == list(reversed(uids)), "newest first"
    page1 = c.locate(attributes=filt, maximum_items=2)
    page2 = c.locate(attributes=filt, maximum_items=2, offset_items=2)
    page3 = c.locate(attributes=filt, maximum_items=2, offset_items=4)
    assert page1 + page2 + page3 == list(reversed(uids))
    filt_type = filt + [AF.create_attribute(enums.AttributeType.OBJECT_TYPE, enums.ObjectType.SECRET_DATA)]
    assert c.locate(attributes=filt_type) == []
    for u in uids:
        c.destroy(u)
    assert c.locate(attributes=filt) == [], "destroyed objects are not located"


def test_locate_by_state_and_algorithm(acme_admin):
    name = unique("st")
    uid = new_aes(acme_admin, name=name)
    found = acme_admin.locate(attributes=[
        AF.create_attribute(enums.AttributeType.NAME, name),
        AF.create_attribute(enums.AttributeType.STATE, enums.State.ACTIVE),
        AF.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_ALGORITHM, enums.CryptographicAlgorithm.AES),
        AF.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_LENGTH, 256),
    ])
    assert found == [uid]
    assert acme_admin.locate(attributes=[
        AF.create_attribute(enums.AttributeType.NAME, name),
        AF.create_attribute(enums.AttributeType.STATE, enums.State.PRE_ACTIVE),
    ]) == []
    revoke(acme_admin, uid)
    acme_admin.destroy(uid)


# --- attributes -----------------------------------------------------------

class AddAttributeRequest(payloads.RequestPayload):
    """PyKMIP 0.10 has no Add Attribute payload for KMIP 1.x: a minimal one."""

    def __init__(self, uid, attribute):
        super().__init__()
        self.uid, self.attribute = uid, attribute

    def write(self, output_buffer, kmip_version=enums.KMIPVersion.KMIP_1_0):
        local = utils.BytearrayStream()
        primitives.TextString(self.uid, enums.Tags.UNIQUE_IDENTIFIER).write(local, kmip_version)
        self.attribute.write(local, kmip_version)
        self.length = local.length()
        super().write(output_buffer, kmip_version)
        output_buffer.write(local.buffer)


class AddAttributeResponse(payloads.ResponsePayload):
    def read(self, input_buffer, kmip_version=enums.KMIPVersion.KMIP_1_0):
        super().read(input_buffer, kmip_version)
        local = utils.BytearrayStream(input_buffer.read(self.length))
        uid = primitives.TextString(tag=enums.Tags.UNIQUE_IDENTIFIER)
        uid.read(local, kmip_version)
        self.unique_identifier = uid.value
        self.attribute = cobjects.Attribute()
        self.attribute.read(local, kmip_version)


response_factory.ResponsePayloadFactory._create_add_attribute_payload = lambda self: AddAttributeResponse()


def add_attribute(client, uid, attribute):
    client.proxy.send_request_payload  # the connection is open
    batch = client.proxy._build_request_message(None, [
        __import__("kmip.core.messages.messages", fromlist=["RequestBatchItem"]).RequestBatchItem(
            operation=primitives.Enumeration(enums.Operation, enums.Operation.ADD_ATTRIBUTE, tag=enums.Tags.OPERATION),
            request_payload=AddAttributeRequest(uid, attribute))])
    resp = client.proxy._send_and_receive_message(batch)
    item = resp.batch_items[0]
    if item.result_status.value != enums.ResultStatus.SUCCESS:
        raise exceptions.KmipOperationFailure(item.result_status.value, item.result_reason.value, item.result_message.value)
    return item.response_payload


def test_attribute_add_modify_delete(acme_admin):
    uid = acme_admin.create(enums.CryptographicAlgorithm.AES, 256, name=unique("attr"))
    resp = add_attribute(acme_admin, uid, AF.create_attribute("x-purpose", "backups"))
    assert resp.unique_identifier == uid
    add_attribute(acme_admin, uid, AF.create_attribute(enums.AttributeType.CONTACT_INFORMATION, "ops@example.com"))
    _, attrs = acme_admin.get_attributes(uid, ["x-purpose", "Contact Information"])
    values = {a.attribute_name.value: a.attribute_value.value for a in attrs}
    assert values == {"x-purpose": "backups", "Contact Information": "ops@example.com"}

    new = AF.create_attribute("x-purpose", "archives")
    acme_admin.modify_attribute(unique_identifier=uid, attribute=new)
    _, attrs = acme_admin.get_attributes(uid, ["x-purpose"])
    assert attrs[0].attribute_value.value == "archives"

    names = acme_admin.get_attribute_list(uid)
    assert "x-purpose" in names and "State" in names and "Unique Identifier" in names

    acme_admin.delete_attribute(unique_identifier=uid, attribute_name="x-purpose", attribute_index=0)
    _, attrs = acme_admin.get_attributes(uid, ["x-purpose"])
    assert attrs == []
    with pytest.raises(FAILURE) as e:
        acme_admin.delete_attribute(unique_identifier=uid, attribute_name="x-purpose", attribute_index=0)
    assert reason_of(e) == enums.ResultReason.ITEM_NOT_FOUND
    # Server-set attributes cannot be changed.
    with pytest.raises(exceptions.KmipOperationFailure) as e:
        add_attribute(acme_admin, uid, AF.create_attribute(enums.AttributeType.INITIAL_DATE, 0))
    assert reason_of(e) == enums.ResultReason.PERMISSION_DENIED
    acme_admin.destroy(uid)


# --- lifecycle ------------------------------------------------------------

def revoke(client, uid):
    client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)


def test_lifecycle_activate_revoke_destroy(acme_admin):
    uid = acme_admin.create(enums.CryptographicAlgorithm.AES, 256)
    assert state_of(acme_admin, uid) == enums.State.PRE_ACTIVE
    acme_admin.activate(uid)
    assert state_of(acme_admin, uid) == enums.State.ACTIVE
    with pytest.raises(exceptions.KmipOperationFailure) as e:
        acme_admin.activate(uid)
    assert reason_of(e) == enums.ResultReason.PERMISSION_DENIED
    with pytest.raises(exceptions.KmipOperationFailure) as e:
        acme_admin.destroy(uid)
    assert reason_of(e) == enums.ResultReason.PERMISSION_DENIED, "an Active key cannot be destroyed"
    revoke(acme_admin, uid)
    assert state_of(acme_admin, uid) == enums.State.DEACTIVATED
    acme_admin.destroy(uid)
    assert state_of(acme_admin, uid) == enums.State.DESTROYED


def test_revoke_compromise(acme_admin):
    uid = new_aes(acme_admin)
    acme_admin.revoke(enums.RevocationReasonCode.KEY_COMPROMISE, uid, revocation_message="leaked")
    assert state_of(acme_admin, uid) == enums.State.COMPROMISED
    acme_admin.destroy(uid)
    assert state_of(acme_admin, uid) == enums.State.DESTROYED_COMPROMISED


# --- encrypt / decrypt ----------------------------------------------------

CBC = {"cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
       "block_cipher_mode": enums.BlockCipherMode.CBC,
       "padding_method": enums.PaddingMethod.PKCS5}


def test_encrypt_decrypt_cbc_server_iv(acme_app):
    uid = new_aes(acme_app)
    plain = b"attack at dawn, twice over please"
    ct, iv = acme_app.encrypt(plain, uid=uid, cryptographic_parameters=CBC)
    assert iv is not None and len(iv) == 16
    assert len(ct) == 48
    assert acme_app.decrypt(ct, uid=uid, cryptographic_parameters=CBC, iv_counter_nonce=iv) == plain


def test_encrypt_decrypt_cbc_client_zero_iv(acme_app):
    uid = new_aes(acme_app)
    zero = b"\x00" * 16
    ct, iv = acme_app.encrypt(b"hello", uid=uid, cryptographic_parameters=CBC, iv_counter_nonce=zero)
    assert iv is None, "the server returns an IV only when it generated it"
    assert acme_app.decrypt(ct, uid=uid, cryptographic_parameters=CBC, iv_counter_nonce=zero) == b"hello"


def test_encrypt_decrypt_ctr(acme_app):
    uid = new_aes(acme_app)
    params = {"cryptographic_algorithm": enums.CryptographicAlgorithm.AES, "block_cipher_mode": enums.BlockCipherMode.CTR}
    ct, iv = acme_app.encrypt(b"counter mode data", uid=uid, cryptographic_parameters=params)
    assert len(ct) == len(b"counter mode data")
    assert acme_app.decrypt(ct, uid=uid, cryptographic_parameters=params, iv_counter_nonce=iv) == b"counter mode data"


def test_encrypt_decrypt_gcm_without_aad_12(acme_app):
    """KMIP 1.2 has no tag field: the tag travels appended to the data."""
    uid = new_aes(acme_app)
    params = {"cryptographic_algorithm": enums.CryptographicAlgorithm.AES, "block_cipher_mode": enums.BlockCipherMode.GCM}
    ct, iv = acme_app.encrypt(b"gcm data", uid=uid, cryptographic_parameters=params)
    assert len(iv) == 12 and len(ct) == len(b"gcm data") + 16
    assert acme_app.decrypt(ct, uid=uid, cryptographic_parameters=params, iv_counter_nonce=iv) == b"gcm data"
    tampered = bytes([ct[0] ^ 1]) + ct[1:]
    with pytest.raises(exceptions.KmipOperationFailure) as e:
        acme_app.decrypt(tampered, uid=uid, cryptographic_parameters=params, iv_counter_nonce=iv)
    assert reason_of(e) == enums.ResultReason.CRYPTOGRAPHIC_FAILURE


def gcm_params():
    return cobjects.CryptographicParameters(
        block_cipher_mode=enums.BlockCipherMode.GCM,
        cryptographic_algorithm=enums.CryptographicAlgorithm.AES, tag_length=16)


def test_encrypt_decrypt_gcm_with_aad_14(acme14):
    uid = new_aes(acme14)
    enc = acme14.proxy.send_request_payload(enums.Operation.ENCRYPT, payloads.EncryptRequestPayload(
        unique_identifier=uid, cryptographic_parameters=gcm_params(), data=b"secret record",
        auth_additional_data=b"row 42"))
    assert enc.auth_tag is not None and len(enc.auth_tag) == 16
    dec = acme14.proxy.send_request_payload(enums.Operation.DECRYPT, payloads.DecryptRequestPayload(
        unique_identifier=uid, cryptographic_parameters=gcm_params(), data=enc.data,
        iv_counter_nonce=enc.iv_counter_nonce, auth_additional_data=b"row 42", auth_tag=enc.auth_tag))
    assert dec.data == b"secret record"
    with pytest.raises(kmip_exceptions.OperationFailure) as e:
        acme14.proxy.send_request_payload(enums.Operation.DECRYPT, payloads.DecryptRequestPayload(
            unique_identifier=uid, cryptographic_parameters=gcm_params(), data=enc.data,
            iv_counter_nonce=enc.iv_counter_nonce, auth_additional_data=b"row 43", auth_tag=enc.auth_tag))
    assert e.value.reason == enums.ResultReason.CRYPTOGRAPHIC_FAILURE, "wrong AAD must not decrypt"


def test_encrypt_with_preactive_key_denied(acme_app):
    uid = acme_app.create(enums.CryptographicAlgorithm.AES, 256)
    with pytest.raises(exceptions.KmipOperationFailure) as e:
        acme_app.encrypt(b"x" * 16, uid=uid, cryptographic_parameters=CBC)
    assert reason_of(e) == enums.ResultReason.PERMISSION_DENIED


def test_decrypt_still_works_after_revoke(acme_admin):
    uid = new_aes(acme_admin)
    ct, iv = acme_admin.encrypt(b"old data", uid=uid, cryptographic_parameters=CBC)
    revoke(acme_admin, uid)
    with pytest.raises(exceptions.KmipOperationFailure):
        acme_admin.encrypt(b"new data", uid=uid, cryptographic_parameters=CBC)
    assert acme_admin.decrypt(ct, uid=uid, cryptographic_parameters=CBC, iv_counter_nonce=iv) == b"old data"


# --- roles and tenants ----------------------------------------------------

def test_app_role_cannot_destroy(acme_app, acme_admin):
    uid = acme_app.create(enums.CryptographicAlgorithm.AES, 256)
    with pytest.raises(exceptions.KmipOperationFailure) as e:
        acme_app.destroy(uid)
    assert reason_of(e) == enums.ResultReason.PERMISSION_DENIED
    acme_admin.destroy(uid)


def test_foreign_tenant_sees_nothing(acme_admin, globex_admin):
    name = unique("acme-secret")
    uid = new_aes(acme_admin, name=name)
    missing = "00000000-0000-4000-8000-000000000000"
    for call in (
        lambda u: globex_admin.get(u),
        lambda u: globex_admin.get_attributes(u),
        lambda u: globex_admin.get_attribute_list(u),
        lambda u: globex_admin.activate(u),
        lambda u: revoke(globex_admin, u),
        lambda u: globex_admin.destroy(u),
        lambda u: globex_admin.encrypt(b"x" * 16, uid=u, cryptographic_parameters=CBC),
        lambda u: globex_admin.decrypt(b"x" * 16, uid=u, cryptographic_parameters=CBC, iv_counter_nonce=b"\0" * 16),
    ):
        with pytest.raises(exceptions.KmipOperationFailure) as foreign:
            call(uid)
        with pytest.raises(exceptions.KmipOperationFailure) as absent:
            call(missing)
        assert reason_of(foreign) == enums.ResultReason.ITEM_NOT_FOUND
        assert (reason_of(foreign), foreign.value.message.replace(uid, "ID")) == \
               (reason_of(absent), absent.value.message.replace(missing, "ID")), "a foreign object answers like a missing one"
    assert globex_admin.locate(attributes=[AF.create_attribute(enums.AttributeType.NAME, name)]) == []
    assert uid not in globex_admin.locate()
    # Still intact for its owner.
    assert state_of(acme_admin, uid) == enums.State.ACTIVE
    revoke(acme_admin, uid)
    acme_admin.destroy(uid)


# --- a new user's first steps beyond AES (issue 5) --------------------------


def test_rsa_key_pair_sign_verify(acme_admin):
    pub, priv = acme_admin.create_key_pair(
        enums.CryptographicAlgorithm.RSA, 2048,
        public_usage_mask=[enums.CryptographicUsageMask.VERIFY],
        private_usage_mask=[enums.CryptographicUsageMask.SIGN])
    acme_admin.activate(pub)
    acme_admin.activate(priv)
    params = {"cryptographic_algorithm": enums.CryptographicAlgorithm.RSA,
              "hashing_algorithm": enums.HashingAlgorithm.SHA_256,
              "padding_method": enums.PaddingMethod.PSS}
    sig = acme_admin.sign(b"release 1.0", uid=priv, cryptographic_parameters=params)
    assert len(sig) == 256
    assert acme_admin.signature_verify(b"release 1.0", sig, uid=pub, cryptographic_parameters=params) == \
        enums.ValidityIndicator.VALID
    assert acme_admin.signature_verify(b"release 1.1", sig, uid=pub, cryptographic_parameters=params) == \
        enums.ValidityIndicator.INVALID
    # The public key verifies outside the server too.
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    key = serialization.load_der_public_key(acme_admin.get(pub).value)
    key.verify(sig, b"release 1.0", padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())


def test_rsa_key_pair_too_short_refused(acme_admin):
    with pytest.raises(exceptions.KmipOperationFailure) as e:
        acme_admin.create_key_pair(enums.CryptographicAlgorithm.RSA, 1024)
    assert reason_of(e) == enums.ResultReason.FEATURE_NOT_SUPPORTED


def test_get_wrapped_and_unwrap_locally(acme_admin):
    from cryptography.hazmat.primitives.keywrap import aes_key_unwrap
    kek = acme_admin.create(enums.CryptographicAlgorithm.AES, 256, cryptographic_usage_mask=[
        enums.CryptographicUsageMask.WRAP_KEY, enums.CryptographicUsageMask.UNWRAP_KEY])
    acme_admin.activate(kek)
    key = acme_admin.register(objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 128, bytes(range(16))))
    spec = {
        "wrapping_method": enums.WrappingMethod.ENCRYPT,
        "encryption_key_information": {
            "unique_identifier": kek,
            "cryptographic_parameters": {"block_cipher_mode": enums.BlockCipherMode.NIST_KEY_WRAP},
        },
        "encoding_option": enums.EncodingOption.NO_ENCODING,
    }
    # PyKMIP 0.10 cannot decode a wrapped Key Value: KMIP (1.4 §2.1.4)
    # makes it a Byte String, PyKMIP's KeyValue.read expects the Structure
    # its own server sends. So the request goes out through PyKMIP and the
    # answer is read with a few lines of TTLV.
    from kmip.core.messages import messages, payloads as pl
    proxy = acme_admin.proxy
    item = messages.RequestBatchItem(
        operation=primitives.Enumeration(enums.Operation, enums.Operation.GET, tag=enums.Tags.OPERATION),
        request_payload=pl.GetRequestPayload(
            unique_identifier=key,
            key_wrapping_specification=acme_admin._build_key_wrapping_specification(spec)))
    proxy._send_message(proxy._build_request_message(None, [item]))
    wrapped = ttlv_find(bytes(proxy._receive_message().buffer), 0x420045)
    assert wrapped is not None and len(wrapped) == 24, "RFC 3394 adds 8 bytes"
    kek_bytes = acme_admin.get(kek).value
    assert aes_key_unwrap(kek_bytes, wrapped) == bytes(range(16))


def ttlv_find(buf, tag):
    """The value of the first Byte String with tag in a TTLV message."""
    i = 0
    while i + 8 <= len(buf):
        t, typ, n = int.from_bytes(buf[i:i + 3], "big"), buf[i + 3], int.from_bytes(buf[i + 4:i + 8], "big")
        if typ == 0x01:  # Structure: descend
            i += 8
            continue
        if t == tag and typ == 0x08:
            return buf[i + 8:i + 8 + n]
        i += 8 + (n + 7) // 8 * 8
    return None


def test_derive_key_pbkdf2(acme_admin):
    import hashlib
    password = b"correct horse battery staple"
    base = acme_admin.register(objects.SecretData(password, enums.SecretDataType.PASSWORD,
                                                  masks=[enums.CryptographicUsageMask.DERIVE_KEY]))
    acme_admin.activate(base)
    uid = acme_admin.derive_key(
        enums.ObjectType.SYMMETRIC_KEY, [base], enums.DerivationMethod.PBKDF2,
        {"cryptographic_parameters": {"hashing_algorithm": enums.HashingAlgorithm.SHA_256},
         "salt": b"NaCl-1234", "iteration_count": 10000},
        cryptographic_length=256, cryptographic_algorithm=enums.CryptographicAlgorithm.AES)
    got = acme_admin.get(uid).value
    assert got == hashlib.pbkdf2_hmac("sha256", password, b"NaCl-1234", 10000, 32)


def test_mac_hmac_sha256(acme_admin):
    import hmac as pyhmac, hashlib
    k = bytes(range(32))
    uid = acme_admin.register(objects.SymmetricKey(enums.CryptographicAlgorithm.HMAC_SHA256, 256, k,
                                                   masks=[enums.CryptographicUsageMask.MAC_GENERATE]))
    acme_admin.activate(uid)
    _, mac = acme_admin.mac(b"message", uid=uid, algorithm=enums.CryptographicAlgorithm.HMAC_SHA256)
    assert mac == pyhmac.new(k, b"message", hashlib.sha256).digest()
