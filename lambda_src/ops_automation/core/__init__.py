"""What every module of the project does; module packages stand on it and add only their own decisions."""
