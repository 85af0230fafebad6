"""pyserial's handler for sim:// URLs (found as <package>.protocol_<scheme>): a VirtualBoard.

    serial.serial_for_url("sim://nano33ble?model=m_int8.tflite")   # after `import edgekit.protocol`
"""
from .transport import SimSerial as Serial

__all__ = ["Serial"]
