"""gRPC server reflection in both versions: ``grpc.reflection.v1`` and ``v1alpha``.

grpcio-reflection serves only ``grpc.reflection.v1alpha.ServerReflection``. The v1
service is the same protocol under another package name: the same messages, field for
field, hence the same bytes on the wire. So its calls are answered by the very servicer
of the v1alpha service, reading and writing the v1alpha messages.

For reflection to describe the v1 service itself (``grpcurl describe``, ``buf curl
--list-methods``), its file descriptor is derived at start from the installed v1alpha
descriptor, renaming the package; no copy of a ``.proto`` file is kept here.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

__all__ = [
    "SERVICE_NAMES",
    "V1ALPHA_SERVICE_NAME",
    "V1_SERVICE_NAME",
    "enable_server_reflection",
    "v1_file_descriptor",
]

V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
SERVICE_NAMES = (V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)
"""The reflection services, newest first."""

_V1ALPHA_PACKAGE = "grpc.reflection.v1alpha"
_V1_PACKAGE = "grpc.reflection.v1"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def enable_server_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve both reflection versions on ``server``, listing ``service_names`` and themselves."""
    _add_v1_descriptor(descriptor_pool.Default())
    servicer = ReflectionServicer((*service_names, *SERVICE_NAMES))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.method_handlers_generic_handler(
        V1_SERVICE_NAME,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((v1,))


def v1_file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The v1 reflection file: the v1alpha one, its package and type references renamed."""
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = _V1_FILE
    proto.package = _V1_PACKAGE
    proto.ClearField("options")  # language packages of the v1alpha file (java, go, ...)
    for message in proto.message_type:
        _rename_fields(message)
    for service in proto.service:
        for method in service.method:
            method.input_type = _renamed(method.input_type)
            method.output_type = _renamed(method.output_type)
    return proto


def _rename_fields(message: descriptor_pb2.DescriptorProto) -> None:
    for field in message.field:
        if field.type_name:
            field.type_name = _renamed(field.type_name)
    for nested in message.nested_type:
        _rename_fields(nested)


def _renamed(type_name: str) -> str:
    prefix = f".{_V1ALPHA_PACKAGE}."
    if type_name.startswith(prefix):
        return f".{_V1_PACKAGE}." + type_name.removeprefix(prefix)
    return type_name


def _add_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """Add the v1 file to ``pool`` unless it holds it already (a second server, a newer grpc)."""
    try:
        pool.FindFileContainingSymbol(V1_SERVICE_NAME)
    except KeyError:
        pool.AddSerializedFile(v1_file_descriptor().SerializeToString())
