"""PersistentVolume controllers: the binder (`binder`), in-use protection (`protection`), and their
pure decisions (`decisions`, `util`).  Volume expansion is not implemented."""

from kubelite.controllers.persistentvolume.binder import PersistentVolumeBinder
from kubelite.controllers.persistentvolume.protection import PVCProtectionController, PVProtectionController

__all__ = ["PVCProtectionController", "PVProtectionController", "PersistentVolumeBinder"]
