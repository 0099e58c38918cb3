"""losscape: loss-landscape visualization (Li et al. 2018) on VTK and ParaView."""
__version__ = "0.1.0"
