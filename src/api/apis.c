/*-------------------------------------------------------------------------
 *
 * apis.c
 *		  The table of APIs the extension speaks: a server's api option
 *		  names one of these services.
 *
 * A new API is a unit file of its own in this folder and one line here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "oprec_fdw.h"

extern const OprecService oprec_feishu_service;
extern const OprecService oprec_huawei_service;

const OprecService *const oprec_services[] = {
	&oprec_feishu_service,
	&oprec_huawei_service,
	NULL
};

/* The service a server's api option names, or NULL. */
const OprecService *
oprec_find_service(const char *name)
{
	for (int i = 0; oprec_services[i]; i++)
		if (strcmp(oprec_services[i]->name, name) == 0)
			return oprec_services[i];
	return NULL;
}

/*
 * The table of a service that a table's resource option names (the
 * validator checked the name); the service's first without one.
 */
const OprecResource *
oprec_find_resource(const OprecService *service, const char *name)
{
	for (int i = 0; name && service->resources[i]; i++)
		if (strcmp(service->resources[i]->name, name) == 0)
			return service->resources[i];
	return service->resources[0];
}
