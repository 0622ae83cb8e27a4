"""Program eBPF maps from the BTF in the eBPF object.

Named fields in, the exact bytes the C program reads out to the kernel; and
back. Values follow the rules of ebpf-sdk's YAML input: dicts with the C
fields (an unknown field is an error, a missing one is zero), lists for
arrays, ints, and strings for sugar such as ``"10.0.0.1"``,
``"aa:bb:cc:dd:ee:ff"``, ``"0x1f"`` or a C enum's name.

>>> import ebpf_sdk
>>> obj = ebpf_sdk.Object.from_elf("firewall-ebpf/firewall.bpf.o")
>>> table = obj.map("ingress_node_firewall_table_map")     # offline, no root
>>> key, value = table.encode({"prefixLen": 64, "ingress_ifindex": 6, "ip_data": "10.10.10.2"}, None)
>>> key.hex()
'40000000060000000a0a0a02000000000000000000000000'

On the live map (as root; maps pinned by name under /sys/fs/bpf)::

    table = obj.open("ingress_node_firewall_table_map")
    table[key] = {"rules": [{"ruleId": 1, "protocol": 1, "icmpType": 8, "action": 1}]}
    for k, v in table.items(): ...

See ``help(ebpf_sdk.Object)``, ``help(ebpf_sdk.Map)`` and the exceptions in
``help(ebpf_sdk.Error)``.
"""

from ._errors import Error, InputError, KernelError, MismatchError
from ._native import EntryIterator, EventIterator, Map, Object, __version__

__all__ = [
    "Object",
    "Map",
    "EntryIterator",
    "EventIterator",
    "Error",
    "InputError",
    "KernelError",
    "MismatchError",
    "__version__",
]
