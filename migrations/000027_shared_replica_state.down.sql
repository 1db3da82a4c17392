DROP TABLE ingress_polls;
DROP TABLE login_throttle;
