"""SMS representations: the GSM 03.38 alphabet, TE character sets, text-mode records."""
