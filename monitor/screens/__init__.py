"""Terminal screens: the bedside's curses and plain screens, and the central station's board.

They draw what the bedside (``monitor.bedside.view``) and the central
station (``monitor.network.central_board``) hold, and send keys back as
commands; they never touch ports, the detector or the log. May import the
bedside and below; only the command line imports them.
"""
