"""The mitmproxy addon's runtime, beside ``addons/mutecheck.py`` (the script users load).

Small addon classes, one feature each, in mitmproxy's style: ``marks`` (the ``mutecheck.mark``
and ``mutecheck.state`` commands, the http://mutecheck.mark/ answer), ``judging`` (the options
that set the monitor), ``signaling`` (HTTP and WebSocket messages to the monitor), ``media``
(RTP over UDP, TURN over TCP or TLS), ``blocking`` (``mutecheck_block``), ``saving``
(``flows.mitm``) and ``folder`` (the session folder, the start and end of a session). What they
share, built once and handed to each: ``recorder`` (the monitor, events.jsonl, the observer
process); ``guard`` (no exception leaves a hook, option errors). Their helper processes:
``observer`` (the monitor in a process of its own), ``flowfile`` (the flow writer) and ``helper``
(starting them, their frames). ``script`` says where the script is, for programs that start
mitmdump with it. What the messages mean lives in :mod:`decoders.session`.
"""
