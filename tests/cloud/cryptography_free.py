"""PEM helpers without third-party packages."""
import base64
import re


def read_pem_certs(path):
    text = open(path).read()
    return [base64.b64decode("".join(b.split()))
            for b in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----",
                                text, re.S)]
