"""A WebHDFS (HDFS REST API) fake with an in-memory filesystem.

Follows https://hadoop.apache.org/docs/stable/hadoop-project-dist/hadoop-hdfs/WebHDFS.html:
``/webhdfs/v1/<path>?op=...&user.name=...``; CREATE, APPEND and OPEN use the documented two-step
redirect (the "NameNode" answers 307 with a ``Location`` on a "DataNode" URL, recognised by its
``namenoderpcaddress`` parameter as on a real DataNode); JSON bodies FileStatus, FileStatuses,
boolean, Path; errors as ``{"RemoteException": {"exception", "javaClassName", "message"}}``.
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from mlwf_testsupport.fakes._http import FakeHttpServer, Request, Response

PREFIX = "/webhdfs/v1"
_NAMENODE_RPC = "fake-namenode:8020"

#: exception name -> (Java class, HTTP status), as the NameNode's ExceptionHandler maps them.
EXCEPTIONS = {
    "FileNotFoundException": ("java.io.FileNotFoundException", 404),
    "SecurityException": ("java.lang.SecurityException", 401),
    "AccessControlException": ("org.apache.hadoop.security.AccessControlException", 403),
    "FileAlreadyExistsException": ("org.apache.hadoop.fs.FileAlreadyExistsException", 403),
    "ParentNotDirectoryException": ("org.apache.hadoop.fs.ParentNotDirectoryException", 403),
    "PathIsNotEmptyDirectoryException": (
        "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException",
        403,
    ),
    "IllegalArgumentException": ("java.lang.IllegalArgumentException", 400),
    "UnsupportedOperationException": ("java.lang.UnsupportedOperationException", 400),
    "IOException": ("java.io.IOException", 403),
    "RuntimeException": ("java.lang.RuntimeException", 500),
    "StandbyException": ("org.apache.hadoop.ipc.StandbyException", 403),
}
_STATUS_EXCEPTION = {
    401: "SecurityException",
    403: "AccessControlException",
    404: "FileNotFoundException",
    400: "IllegalArgumentException",
}


class _HdfsError(Exception):
    def __init__(self, exception: str, message: str) -> None:
        super().__init__(message)
        self.exception = exception
        self.message = message


@dataclass
class _Node:
    kind: str  # "FILE" or "DIRECTORY"
    owner: str
    data: bytearray = field(default_factory=bytearray)
    mtime: int = field(default_factory=lambda: int(time.time() * 1000))
    file_id: int = 0


class FakeWebHdfs(FakeHttpServer):
    """In-memory WebHDFS NameNode + DataNode on one loopback port.

    ``allowed_users``: when given, requests from other ``user.name`` values are refused with
    403 AccessControlException (simple authentication has no password).
    """

    system = "WebHDFS"

    def __init__(self, *, allowed_users: set[str] | None = None, port: int = 0) -> None:
        super().__init__(port=port)
        self.allowed_users = allowed_users
        self._next_id = 16386
        self._nodes: dict[str, _Node] = {"/": _Node("DIRECTORY", "hdfs", file_id=16385)}

    # direct access for tests -------------------------------------------------------------
    def write_file(self, path: str, data: bytes, owner: str = "hdfs") -> None:
        """Create (or replace) file ``path`` with ``data``, creating parent directories."""
        with self._lock:
            self._create(posixpath.normpath(path), owner, overwrite=True)
            self._nodes[posixpath.normpath(path)].data = bytearray(data)

    def read_file(self, path: str) -> bytes:
        """Return the content of file ``path`` (KeyError if absent)."""
        node = self._nodes[posixpath.normpath(path)]
        if node.kind != "FILE":
            raise IsADirectoryError(path)
        return bytes(node.data)

    def exists(self, path: str) -> bool:
        """Return whether ``path`` exists."""
        return posixpath.normpath(path) in self._nodes

    # protocol ----------------------------------------------------------------------------
    def error_response(self, status: int, message: str, request: Request) -> Response:
        exception = _STATUS_EXCEPTION.get(status, "RuntimeException")
        return self._remote_exception(exception, message, status)

    def _remote_exception(
        self, exception: str, message: str, status: int | None = None
    ) -> Response:
        java_class, default_status = EXCEPTIONS[exception]
        return Response.json(
            status or default_status,
            {
                "RemoteException": {
                    "exception": exception,
                    "javaClassName": java_class,
                    "message": message,
                }
            },
        )

    def handle(self, request: Request) -> Response:
        if not request.path.startswith(PREFIX):
            return Response(404, b"Not Found", {"Content-Type": "text/plain"})
        path = posixpath.normpath("/" + request.path[len(PREFIX) :].lstrip("/"))
        op = request.query.get("op", "").upper()
        user = request.query.get("user.name", "dr.who")
        if self.allowed_users is not None and user not in self.allowed_users:
            return self._remote_exception(
                "AccessControlException",
                f'Permission denied: user={user}, access=EXECUTE, inode="{path}"',
            )
        handler = _OPERATIONS.get((request.method, op))
        if handler is None:
            return self._remote_exception(
                "IllegalArgumentException",
                f'Invalid value for webhdfs parameter "op": No enum constant '
                f"org.apache.hadoop.hdfs.web.resources.{_op_enum(request.method)}.Op.{op}",
            )
        try:
            with self._lock:
                return handler(self, request, path, user)
        except _HdfsError as error:
            return self._remote_exception(error.exception, error.message)

    # helpers -----------------------------------------------------------------------------
    def _get(self, path: str) -> _Node:
        node = self._nodes.get(path)
        if node is None:
            raise _HdfsError("FileNotFoundException", f"File does not exist: {path}")
        return node

    def _children(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted(
            p
            for p in self._nodes
            if p != "/" and p.startswith(prefix) and "/" not in p[len(prefix) :]
        )

    def _new_node(self, kind: str, owner: str) -> _Node:
        self._next_id += 1
        return _Node(kind, owner, file_id=self._next_id)

    def _mkdirs(self, path: str, owner: str) -> None:
        parts = [p for p in path.split("/") if p]
        current = ""
        for part in parts:
            current += "/" + part
            node = self._nodes.get(current)
            if node is None:
                self._nodes[current] = self._new_node("DIRECTORY", owner)
            elif node.kind == "FILE":
                raise _HdfsError("ParentNotDirectoryException", f"{current} (is not a directory)")

    def _create(self, path: str, owner: str, *, overwrite: bool) -> None:
        existing = self._nodes.get(path)
        if existing is not None:
            if existing.kind == "DIRECTORY":
                raise _HdfsError(
                    "FileAlreadyExistsException", f"{path} already exists as a directory"
                )
            if not overwrite:
                raise _HdfsError(
                    "FileAlreadyExistsException",
                    f"{path} for client 127.0.0.1 already exists",
                )
        self._mkdirs(posixpath.dirname(path), owner)
        self._nodes[path] = self._new_node("FILE", owner)

    def _status(self, path: str, node: _Node, suffix: str) -> dict[str, object]:
        return {
            "accessTime": node.mtime if node.kind == "FILE" else 0,
            "blockSize": 134217728 if node.kind == "FILE" else 0,
            "childrenNum": len(self._children(path)) if node.kind == "DIRECTORY" else 0,
            "fileId": node.file_id,
            "group": "supergroup",
            "length": len(node.data) if node.kind == "FILE" else 0,
            "modificationTime": node.mtime,
            "owner": node.owner,
            "pathSuffix": suffix,
            "permission": "644" if node.kind == "FILE" else "755",
            "replication": 3 if node.kind == "FILE" else 0,
            "storagePolicy": 0,
            "type": node.kind,
        }

    def _datanode_location(self, request: Request, path: str) -> Response:
        query = {k: v for k, v in request.query.items() if k != "op"}
        query = {"op": request.query["op"].upper(), **query, "namenoderpcaddress": _NAMENODE_RPC}
        location = f"{self.url}{PREFIX}{quote(path)}?{urlencode(query)}"
        return Response(
            307, b"", {"Location": location, "Content-Type": "application/octet-stream"}
        )

    # operations --------------------------------------------------------------------------
    def _op_getfilestatus(self, request: Request, path: str, user: str) -> Response:
        return Response.json(200, {"FileStatus": self._status(path, self._get(path), "")})

    def _op_liststatus(self, request: Request, path: str, user: str) -> Response:
        node = self._get(path)
        if node.kind == "FILE":
            statuses = [self._status(path, node, "")]
        else:
            statuses = [
                self._status(child, self._nodes[child], posixpath.basename(child))
                for child in self._children(path)
            ]
        return Response.json(200, {"FileStatuses": {"FileStatus": statuses}})

    def _op_gethomedirectory(self, request: Request, path: str, user: str) -> Response:
        return Response.json(200, {"Path": f"/user/{user}"})

    def _op_mkdirs(self, request: Request, path: str, user: str) -> Response:
        self._mkdirs(path, user)
        return Response.json(200, {"boolean": True})

    def _op_rename(self, request: Request, path: str, user: str) -> Response:
        destination = request.query.get("destination")
        if not destination or not destination.startswith("/"):
            raise _HdfsError(
                "IllegalArgumentException",
                f'Invalid value for webhdfs parameter "destination": {destination!r} is not an absolute path',
            )
        destination = posixpath.normpath(destination)
        if path not in self._nodes or path == "/":
            return Response.json(200, {"boolean": False})
        target = self._nodes.get(destination)
        if target is not None and target.kind == "DIRECTORY":
            destination = posixpath.join(destination, posixpath.basename(path))
        parent = self._nodes.get(posixpath.dirname(destination))
        if destination in self._nodes or parent is None or parent.kind != "DIRECTORY":
            return Response.json(200, {"boolean": False})
        if destination == path or destination.startswith(path + "/"):
            return Response.json(200, {"boolean": False})
        moved = {p: n for p, n in self._nodes.items() if p == path or p.startswith(path + "/")}
        for old, node in moved.items():
            del self._nodes[old]
            self._nodes[destination + old[len(path) :]] = node
        return Response.json(200, {"boolean": True})

    def _op_delete(self, request: Request, path: str, user: str) -> Response:
        recursive = request.query.get("recursive", "false").lower() == "true"
        if path not in self._nodes or path == "/":
            return Response.json(200, {"boolean": False})
        if self._nodes[path].kind == "DIRECTORY" and self._children(path) and not recursive:
            raise _HdfsError(
                "PathIsNotEmptyDirectoryException", f"`{path} is non empty': Directory is not empty"
            )
        for p in [p for p in self._nodes if p == path or p.startswith(path + "/")]:
            del self._nodes[p]
        return Response.json(200, {"boolean": True})

    def _op_create(self, request: Request, path: str, user: str) -> Response:
        if "namenoderpcaddress" not in request.query:
            return self._datanode_location(request, path)
        overwrite = request.query.get("overwrite", "false").lower() == "true"
        self._create(path, user, overwrite=overwrite)
        self._nodes[path].data = bytearray(request.body)
        return Response(201, b"", {"Location": f"hdfs://{_NAMENODE_RPC}{path}"})

    def _op_append(self, request: Request, path: str, user: str) -> Response:
        node = self._get(path)
        if node.kind != "FILE":
            raise _HdfsError("FileNotFoundException", f"Path is not a file: {path}")
        if "namenoderpcaddress" not in request.query:
            return self._datanode_location(request, path)
        node.data.extend(request.body)
        node.mtime = int(time.time() * 1000)
        return Response(200, b"")

    def _op_open(self, request: Request, path: str, user: str) -> Response:
        node = self._get(path)
        if node.kind != "FILE":
            raise _HdfsError("FileNotFoundException", f"Path is not a file: {path}")
        if "namenoderpcaddress" not in request.query:
            return self._datanode_location(request, path)
        offset = int(request.query.get("offset", "0"))
        length = request.query.get("length")
        end = None if length is None else offset + int(length)
        return Response(
            200, bytes(node.data[offset:end]), {"Content-Type": "application/octet-stream"}
        )


def _op_enum(method: str) -> str:
    return {
        "GET": "GetOpParam",
        "PUT": "PutOpParam",
        "POST": "PostOpParam",
        "DELETE": "DeleteOpParam",
    }.get(method, "HttpOpParam")


_OPERATIONS = {
    ("GET", "GETFILESTATUS"): FakeWebHdfs._op_getfilestatus,
    ("GET", "LISTSTATUS"): FakeWebHdfs._op_liststatus,
    ("GET", "GETHOMEDIRECTORY"): FakeWebHdfs._op_gethomedirectory,
    ("GET", "OPEN"): FakeWebHdfs._op_open,
    ("PUT", "MKDIRS"): FakeWebHdfs._op_mkdirs,
    ("PUT", "RENAME"): FakeWebHdfs._op_rename,
    ("PUT", "CREATE"): FakeWebHdfs._op_create,
    ("POST", "APPEND"): FakeWebHdfs._op_append,
    ("DELETE", "DELETE"): FakeWebHdfs._op_delete,
}
