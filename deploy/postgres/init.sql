-- One database per service (DESIGN: no service reads another's tables).
CREATE DATABASE campaigns;
CREATE DATABASE petitions;
CREATE DATABASE notifications;
