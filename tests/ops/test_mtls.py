"""Optional mutual TLS: `fleet-agent run --client-cert/--client-key` proves the host to a TLS endpoint
that requires a client certificate (a reverse proxy in front of the server, docs/deploy.md)."""
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.http import Client, ssl_context


def _cert(tmp_path, name):
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not available to make test certificates")
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


class _Accept(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        peer = self.connection.getpeercert()
        body = dict(x[0] for x in peer["subject"])["commonName"].encode()
        self.send_response(202)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def mtls_server(tmp_path):
    server_cert, server_key = _cert(tmp_path, "server")
    client_cert, client_key = _cert(tmp_path, "host-17")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(server_cert, server_key)
    tls.verify_mode = ssl.CERT_REQUIRED
    tls.load_verify_locations(client_cert)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", server_cert, client_cert, client_key
    httpd.shutdown()
    httpd.server_close()


def test_the_agent_presents_its_client_certificate(tmp_path, mtls_server):
    url, server_cert, client_cert, client_key = mtls_server
    token = tmp_path / "token"
    token.write_text("iof_x\n")
    token.chmod(0o600)
    context = ssl_context(ca_file=str(server_cert), insecure=False, client_cert=str(client_cert), client_key=str(client_key))
    resp = Client(url, token_file=token, context=context, timeout=10).send_snapshot(b"{}")
    assert resp.status == 202 and resp.body == b"host-17"


def test_without_a_client_certificate_the_endpoint_refuses_the_agent(tmp_path, mtls_server):
    url, server_cert, _, _ = mtls_server
    token = tmp_path / "token"
    token.write_text("iof_x\n")
    token.chmod(0o600)
    resp = Client(url, token_file=token, context=ssl_context(ca_file=str(server_cert), insecure=False), timeout=10).send_snapshot(b"{}")
    assert resp.status is None and resp.error
