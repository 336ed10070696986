"""VPN with strongSwan: site-to-site tunnels and remote access (``site2sitevpn``,
``remoteaccessvpn``, ``vpnuserlist``)."""
