"""The Raspberry Pi 4 and the Coral USB Accelerator on it: measuring here, or on a Pi over ssh.

    from edgekit.pi import measure, profile_on_board, profile_remote
    measure(model_bytes, accelerator=False)                  # the Pi's CPU (LiteRT + XNNPACK)
    measure(edgetpu_model_bytes, accelerator=True)           # the Coral (pycoral / LiteRT + libedgetpu)
    profile_on_board(model_bytes, "coral", runs=50)          # the standard profile report, measured
    profile_remote("m.tflite", "rpi4", host="pi@raspberrypi.local")   # from a laptop, over ssh
"""
from .remote import deploy_remote, profile_remote
from .on_board import STAND_IN_LABEL, infer, measure, open_interpreter, profile_on_board

__all__ = ["measure", "infer", "open_interpreter", "profile_on_board", "profile_remote", "deploy_remote",
           "STAND_IN_LABEL"]
