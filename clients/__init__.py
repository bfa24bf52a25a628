"""The clients of the server and the model: the desktop drawing window, and reading numbers in image files."""
