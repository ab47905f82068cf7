# A stand-in for systemd's notification socket: binds a unix datagram socket (a path, or '@name' for the
# abstract namespace), prints "listening" once bound, then every datagram as one JSON string per line.
# Node has no unix datagram sockets, which is why this is Python.
import json
import socket
import sys

address = sys.argv[1]
receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
receiver.bind('\0' + address[1:] if address.startswith('@') else address)
print('listening', flush=True)
while True:
    message = receiver.recv(65536)
    print(json.dumps(message.decode('utf-8', 'replace')), flush=True)
