"""Calculation packages: adapter XML, parameter files and the safe handling of both.

Everything here is pure Python over the standard library and lxml: no RPC, no
database, no FTP. The services call these functions; nothing here calls them.
"""
