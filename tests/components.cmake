# One line per optional component: its test folder and the libraries it links.
