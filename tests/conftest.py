"""Every test process sees 4 CPU devices, so pmapped code is tested against one device."""
import chex

chex.set_n_cpu_devices(4)
