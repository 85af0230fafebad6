"""Simulations of what a model needs on a microcontroller, computed without the board.

`sim.arena`: TFLite Micro's tensor arena (head, tail, where every tensor lives), planned in
Python by the same rules as TFLite Micro, so it works where the tflite-micro wheel does not.
"""
