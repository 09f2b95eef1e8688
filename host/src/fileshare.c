/* SPDX-License-Identifier: MIT */
/*
 * rig_file_share(): files made in the host-wide lock and state directory reach every
 * user of the rig. Its own file, because the GPIO holder program (host/holder/), which
 * links no librig, makes its socket and pid file there too.
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

void rig_file_share(int fd, const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	struct stat st, fst;
	mode_t mode;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (stat(dir, &st) < 0 || (fd >= 0 ? fstat(fd, &fst) : lstat(path, &fst)) < 0 ||
	    fst.st_uid != geteuid())
		return;
	if (st.st_mode & S_IWOTH)
		mode = 0666;
	else if ((st.st_mode & S_ISGID) && (st.st_mode & S_IWGRP))
		mode = 0664;
	else
		return;
	if (fd >= 0)
		(void)fchmod(fd, mode);
	else
		(void)chmod(path, mode);
}
